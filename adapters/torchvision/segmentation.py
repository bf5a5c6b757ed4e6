"""torchvision semantic segmenters: ``tv-fcn_*``, ``tv-deeplabv3_*``, ``tv-lraspp_mobilenet_v3_large``.

Preprocessing is the one torchvision ships with the weights (shorter side resized to 520, ImageNet
normalisation; the ``resize_size`` option changes the 520).  The logits are resized back bilinearly to the
original image before the argmax, so the label map is scored at full resolution (torchvision's own reference
scores at the resized 520 resolution instead).
Classes are the 21 VOC classes (``labels.VOC_CLASSES``); ``check_compatible`` refuses any other list.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from harness.core.adapter import AdapterInfo
from adapters.torchvision._common import TorchvisionAdapter, image_tensor
from adapters.torchvision.labels import TORCHVISION_SPELLING, VOC_CLASSES
from harness.core.errors import BenchError
from harness.core.structures import Sample, SemanticPrediction

SEGMENTATION_BUILDERS = (
    "fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large",
    "lraspp_mobilenet_v3_large",
)
#: torchvision's preset for these weights; the ``resize_size`` option changes it
DEFAULT_RESIZE = 520


class TorchvisionSegmenter(TorchvisionAdapter):
    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {
        **TorchvisionAdapter.accepted_options,
        "resize_size": "shorter side before the network (default 520)",
    }
    task = "semantic"
    fixed_kwargs = {"num_classes": len(VOC_CLASSES)}

    def build_kwargs(self, state_dict: dict[str, Any] | None) -> dict[str, Any]:
        if self.builder.startswith("lraspp"):
            return {}
        return {"aux_loss": state_dict is not None and bool(state_dict) and any(key.startswith("aux_classifier.") for key in state_dict)}

    def check_weights_meta(self, meta: dict[str, Any]) -> None:
        if [TORCHVISION_SPELLING.get(c, c) for c in meta.get("categories", [])] != VOC_CLASSES:
            raise BenchError(f"torchvision weights for {self.builder} use classes bench does not know; refusing to guess")

    def resize_size(self) -> int:
        return int(self.options.get("resize_size", DEFAULT_RESIZE))

    def info(self) -> AdapterInfo:
        return self.base_info(classes=list(VOC_CLASSES),
                              extra={"preprocessing": f"shorter side {self.resize_size()}, ImageNet mean/std; logits resized back"})

    def example_input(self, batch_size: int) -> Any:
        """A normalised ``(batch, 3, S, S)`` batch at the preset's size S (shorter side ``resize_size``)."""
        import torch

        size = self.resize_size()
        return torch.randn((batch_size, 3, size, size), generator=torch.Generator().manual_seed(0))

    def predict(self, samples: Sequence[Sample]) -> list[SemanticPrediction]:
        import torch
        import torch.nn.functional as F

        model = self.model()
        transform = self.default_transforms(resize_size=self.resize_size())
        size = int(self.options.get("max_batch", 4))
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, sample in enumerate(samples):
            by_shape[sample.load_image().shape].append(index)
        label_maps: dict[int, np.ndarray] = {}
        with torch.no_grad():
            for (height, width, _), indices in by_shape.items():
                for start in range(0, len(indices), size):
                    chunk = indices[start : start + size]
                    batch = torch.stack([transform(image_tensor(samples[i].load_image(), self.device)) for i in chunk])
                    logits = model(batch)["out"]
                    logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
                    for index, labels in zip(chunk, logits.argmax(dim=1).cpu().numpy()):
                        label_maps[index] = labels.astype(np.int32)
        return [SemanticPrediction(label_map=label_maps[i]) for i in range(len(samples))]


for _builder in SEGMENTATION_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionSegmenter)
