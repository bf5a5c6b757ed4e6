"""``fcn``, ``unet``, ``aspp`` and ``majority-class``: the in-repo semantic segmentation models.

They were trained on the embedded VOC-layout shapes (``python -m adapters.inrepo.semantic.train``), so they
declare that dataset's classes and ``check_compatible`` refuses any other label space.  Predictions are label
maps in the dataset's evaluation index space at the image's own size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from adapters import ADAPTERS
from adapters.base import Adapter, AdapterInfo, load_state_dict
from adapters.inrepo.checkpoints import default_weights
from adapters.inrepo.inference import fixed_inference
from harness.embedded.shapes_coco import CLASSES as SHAPE_CLASSES
from harness.errors import BenchError
from harness.structures import Sample, SemanticPrediction

#: the embedded VOC-layout label space, background first (``class_names.txt`` of the generated devkit)
CLASSES: list[str] = ["_background_", *(c.name for c in SHAPE_CLASSES)]
TASK = "semantic"
#: the size ``bench throughput`` times the network at: the middle of the embedded images' 128-192 px range
EXAMPLE_SIZE = (160, 160)


class SegmentationNetworkAdapter(Adapter):
    """A network from ``networks.ARCHITECTURES`` with its committed (or the user's) weights."""

    task = TASK
    runs_by_default = True
    batch_invariant = True
    architecture = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from adapters.inrepo.checkpoints import load_into
        from adapters.inrepo.semantic.networks import build_network

        self.network = build_network(self.architecture, len(CLASSES))
        load_into(self.network, self.weights_file(), self.trust_checkpoint)
        self.network.to(self.device).eval()

    def weights_file(self) -> Path:
        return self.checkpoint if self.checkpoint is not None else default_weights(TASK, self.architecture)

    def info(self) -> AdapterInfo:
        parameters = sum(p.numel() for p in self.network.parameters())
        return AdapterInfo(name=self.name, task=TASK, classes=list(CLASSES), parameters=parameters,
                           extra={"architecture": self.architecture, "trained_on": "voc-mini 2012-train"})

    def predict(self, samples: Sequence[Sample]) -> list[SemanticPrediction]:
        """One image at a time, edge-padded to a multiple of the network's stride, with torch pinned to
        ``options["threads"]`` threads (default 1): a label map never depends on the batch or the process count
        (see ``adapters.inrepo.inference``)."""
        with fixed_inference(self.options):
            return [SemanticPrediction(label_map=self._label_map(sample.load_image())) for sample in samples]

    def _label_map(self, image: np.ndarray) -> np.ndarray:
        import torch

        from adapters.inrepo.semantic.data import normalise

        height, width = image.shape[:2]
        batch = normalise(image[None]).to(self.device)
        stride = self.network.stride
        pad_bottom, pad_right = -height % stride, -width % stride
        if pad_bottom or pad_right:
            batch = torch.nn.functional.pad(batch, (0, pad_right, 0, pad_bottom), mode="replicate")
        labels = self.network(batch)[0, :, :height, :width].argmax(dim=0)
        return labels.to(torch.uint8).cpu().numpy()

    def torch_module(self):
        return self.network

    def example_input(self, batch_size: int):
        import torch

        generator = torch.Generator().manual_seed(0)
        return torch.randn((batch_size, 3, *EXAMPLE_SIZE), generator=generator)


@ADAPTERS.register("fcn")
class FCNAdapter(SegmentationNetworkAdapter):
    """Fully convolutional network: stride-8 backbone, 1x1 classifier, bilinear upsampling."""

    architecture = "fcn"


@ADAPTERS.register("unet")
class UNetAdapter(SegmentationNetworkAdapter):
    """U-Net: three poolings, a decoder with skip connections at every scale."""

    architecture = "unet"


@ADAPTERS.register("aspp")
class ASPPAdapter(SegmentationNetworkAdapter):
    """DeepLabv3-style: dilated backbone and an atrous spatial pyramid pooling head with image pooling."""

    architecture = "aspp"


@ADAPTERS.register("majority-class")
class MajorityClassAdapter(Adapter):
    """The trivial baseline: every pixel gets the class most frequent among the training split's pixels.

    Its "weights" are the training class frequencies, committed like any other model's, so the baseline is
    fixed by the training data rather than by whatever split it is run on.
    """

    task = TASK
    runs_by_default = True
    batch_invariant = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        import torch

        state = load_state_dict(self.weights_file(), self.trust_checkpoint)
        frequencies = state.get("class_frequencies")
        if not isinstance(frequencies, torch.Tensor) or tuple(frequencies.shape) != (len(CLASSES),):
            raise BenchError(f"expected 'class_frequencies' of shape ({len(CLASSES)},)", self.weights_file())
        self.class_frequencies = frequencies.double().numpy()
        self.majority = int(np.argmax(self.class_frequencies))

    def weights_file(self) -> Path:
        return self.checkpoint if self.checkpoint is not None else default_weights(TASK, "majority-class")

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task=TASK, classes=list(CLASSES), parameters=0,
                           extra={"majority_class": CLASSES[self.majority]})

    def predict(self, samples: Sequence[Sample]) -> list[SemanticPrediction]:
        return [SemanticPrediction(label_map=np.full(sample.load_image().shape[:2], self.majority, np.uint8))
                for sample in samples]
