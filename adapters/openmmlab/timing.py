"""The network of an OpenMMLab model as one ``nn.Module`` call, for ``bench throughput`` (imports torch and
mmengine: loaded only from ``torch_module()``).

OpenMMLab models run ``data_preprocessor`` (normalisation, padding to a batch) and then
``forward(inputs, data_samples, mode=...)``.  ``mode='tensor'`` is the library's own "network only" path:
backbone, neck and heads, without decoding boxes / heatmaps / label maps.  That is what is timed, on inputs
already normalised and padded (``example_input``), the way the OpenMMLab benchmark tools time a model's
forward.  Two-stage detectors read image shapes from the data samples (the RPN's proposals are clipped to
them), so each call gets data samples carrying the input's shape.
"""
from __future__ import annotations

from typing import Any, Callable

import torch


class TensorForward(torch.nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` with data samples made to match ``inputs``' shape."""

    def __init__(self, model: torch.nn.Module, data_sample_type: Callable[[], Any] | None) -> None:
        super().__init__()
        self.model = model
        self.data_sample_type = data_sample_type

    def data_samples(self, inputs: torch.Tensor) -> list[Any] | None:
        if self.data_sample_type is None:
            return None
        height, width = int(inputs.shape[-2]), int(inputs.shape[-1])
        meta = {"img_shape": (height, width), "ori_shape": (height, width), "pad_shape": (height, width),
                "batch_input_shape": (height, width), "scale_factor": (1.0, 1.0)}
        samples = []
        for _ in range(int(inputs.shape[0])):
            sample = self.data_sample_type()
            sample.set_metainfo(meta)
            samples.append(sample)
        return samples

    def forward(self, inputs: torch.Tensor) -> Any:
        return self.model(inputs, self.data_samples(inputs), mode="tensor")


def padded_size(size: tuple[int, int], model: Any) -> tuple[int, int]:
    """``size`` rounded up to the data preprocessor's ``pad_size_divisor`` (as a real batch would be)."""
    divisor = int(getattr(getattr(model, "data_preprocessor", None), "pad_size_divisor", 1) or 1)
    return tuple(-(-side // divisor) * divisor for side in size)  # type: ignore[return-value]  # two sides in, two out
