"""A stand-in for mmcv's compiled extension ``mmcv._ext``, served by torchvision.ops.

Full mmcv does not compile against our torch, so we install mmcv-lite, which ships ``mmcv.ops`` in Python but
not the C++/CUDA kernels behind it.  ``mmcv.utils.ext_loader.load_ext`` only imports ``mmcv._ext`` and checks the
names exist, so registering this module under that name lets mmdet/mmpose/mmseg import.  The two kernels the
inference paths of our supported configs actually call (NMS and RoIAlign) are exact torchvision equivalents;
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


SERVED_OPS: dict[str, Callable[..., Any]] = {"nms": _nms, "roi_align_forward": _roi_align_forward}


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
