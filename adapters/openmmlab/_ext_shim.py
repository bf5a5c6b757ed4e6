"""A stand-in for mmcv's compiled extension ``mmcv._ext``, served by torchvision.ops.

Full mmcv does not compile against our torch, so we install mmcv-lite, which ships ``mmcv.ops`` in Python but
not the C++/CUDA kernels behind it.  ``mmcv.utils.ext_loader.load_ext`` only imports ``mmcv._ext`` and checks the
names exist, so registering this module under that name lets mmdet/mmpose/mmseg import.  The kernels the
inference paths of our supported configs actually call (NMS, RoIAlign and DEKR's deformable convolution) are
exact torchvision equivalents;
any other op raises a one-line error naming it, so an unsupported config fails loudly instead of silently.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from typing import Any, Callable

from harness.core.errors import BenchError

MODULE_NAME = "mmcv._ext"


class UnsupportedOpError(BenchError):
    """A config needs an mmcv kernel that only the compiled mmcv provides."""


def _nms(bboxes: Any, scores: Any, iou_threshold: float, offset: int = 0) -> Any:
    """mmcv's hard NMS: keep indices in descending score order.

    mmcv's legacy ``offset=1`` measures a box as ``x2 - x1 + 1`` wide; shifting every ``x2, y2`` by the offset
    gives torchvision exactly those widths and intersections.
    """
    from torchvision.ops import nms

    boxes = bboxes.float()
    if offset:
        boxes = boxes.clone()
        boxes[:, 2:] += offset
    return nms(boxes, scores.float(), float(iou_threshold))


def _roi_align_forward(
    input: Any,
    rois: Any,
    output: Any,
    argmax_y: Any,
    argmax_x: Any,
    aligned_height: int,
    aligned_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    pool_mode: int,
    aligned: bool,
) -> None:
    """mmcv's average-mode RoIAlign (same bilinear sampling and adaptive ratio as torchvision), written in place."""
    from torchvision.ops import roi_align

    if pool_mode != 1:
        raise UnsupportedOpError("mmcv op roi_align with pool_mode='max' needs the compiled mmcv (only 'avg' is served)")
    result = roi_align(input, rois.to(input.dtype), (aligned_height, aligned_width), spatial_scale, sampling_ratio, aligned)
    output.copy_(result)


def _deform_conv_forward(
    input: Any,
    weight: Any,
    offset: Any,
    output: Any,
    columns: Any,
    ones: Any,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    im2col_step: int,
) -> None:
    """mmcv's deformable convolution v1 (``DeformConv2d``: DEKR's adaptive activation blocks), written in place.

    torchvision's ``deform_conv2d`` is the same operation with the same offset layout ((dy, dx) per kernel
    position, deformable groups outermost); it reads the convolution groups from the weight's shape and the
    deformable groups from the offset's, which the checks below hold to mmcv's arguments.  ``columns``/``ones``
    (mmcv's im2col scratch buffers) and ``im2col_step`` (its batching of the im2col) do not change the result.
    """
    from torchvision.ops import deform_conv2d

    if weight.shape[1] * group != input.shape[1] or weight.shape[2:] != (kH, kW):
        raise UnsupportedOpError(f"mmcv op deform_conv_forward: weight {tuple(weight.shape)} does not fit input "
                                 f"{tuple(input.shape)} with group={group} and kernel {kH}x{kW}")
    if offset.shape[1] != 2 * deformable_group * kH * kW:
        raise UnsupportedOpError(f"mmcv op deform_conv_forward: offset has {offset.shape[1]} channels, expected "
                                 f"2 x {deformable_group} deformable groups x {kH}x{kW}")
    result = deform_conv2d(input, offset.to(input.dtype), weight.to(input.dtype), stride=(dH, dW),
                           padding=(padH, padW), dilation=(dilationH, dilationW))
    output.resize_(result.shape).copy_(result)


SERVED_OPS: dict[str, Callable[..., Any]] = {"nms": _nms, "roi_align_forward": _roi_align_forward,
                                             "deform_conv_forward": _deform_conv_forward}


def _unsupported(name: str) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise UnsupportedOpError(
            f"mmcv op {name!r} needs the compiled mmcv, which is not installed (bench serves only "
            f"{', '.join(sorted(SERVED_OPS))} through torchvision); pick a config that does not use it"
        )

    fail.__name__ = name
    return fail


def _module_getattr(name: str) -> Callable[..., Any]:
    if name.startswith("__"):
        raise AttributeError(name)
    return _unsupported(name)


def build_ext_module() -> types.ModuleType:
    module = types.ModuleType(MODULE_NAME, __doc__)
    module.__spec__ = importlib.machinery.ModuleSpec(MODULE_NAME, loader=None, origin=__name__)
    module.__file__ = __file__
    module.__dict__.update(SERVED_OPS)
    module.__getattr__ = _module_getattr  # type: ignore[method-assign]  # PEP 562: every other op fails loudly
    return module


def install_ext_shim() -> bool:
    """Register the stand-in unless a real ``mmcv._ext`` exists; returns True when the shim is in use.

    Must run before anything imports ``mmcv.ops`` (mmdet/mmpose/mmseg model modules do).
    """
    existing = sys.modules.get(MODULE_NAME)
    if existing is not None:
        return getattr(existing, "__file__", None) == __file__
    try:
        import mmcv
    except ImportError as exc:
        raise BenchError(
            "OpenMMLab is not installed; run `sh scripts/install_openmmlab.sh .venv` (see docs/openmmlab.md)"
        ) from exc
    if importlib.util.find_spec(MODULE_NAME) is not None:  # full mmcv with compiled kernels: use them
        return False
    module = build_ext_module()
    sys.modules[MODULE_NAME] = module
    mmcv._ext = module  # type: ignore[attr-defined]
    return True
