"""``fcn``, ``unet``, ``aspp`` and ``majority-class``: the in-repo semantic segmentation models.

Each has one weights file per label space it was trained for (``python -m adapters.inrepo.semantic.train``): the
embedded VOC-layout shapes (the default), the embedded Cityscapes streets (19 trainIds) and the embedded ADE20K
rooms (150 classes).  The adapter is built before the dataset is known; ``check_compatible`` binds the weights of
the dataset's family (``adapters.inrepo.weights.weights_for``) and the classes those weights were trained
for, so the fingerprint and ``weights_file()`` name the file that predicts.  A ``--checkpoint`` replaces the
weights but not the label space: it must fit the network for the dataset family's classes.  Predictions are label
maps in the dataset's evaluation index space at the image's own size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.inrepo.weights import WEIGHTS_DIR
from harness.core.adapter import Adapter, AdapterInfo, load_state_dict
from adapters.inrepo.weights import (dataset_family, default_family, default_weights, weights_family,
                                        weights_for)
from adapters.inrepo.parameter_count import count_key, known_parameters, remembered
from adapters.inrepo.inference import PinnedThreads, fixed_inference
from harness.core.dataset import DatasetInfo
from harness.labels.shapes import SHAPE_CLASSES
from harness.core.errors import BenchError
from harness.core.structures import Sample, SemanticPrediction

#: the embedded VOC-layout label space, background first (``class_names.txt`` of the generated devkit)
CLASSES: list[str] = ["_background_", *SHAPE_CLASSES]
TASK = "semantic"
#: the size ``bench throughput`` times the network at: the middle of the embedded images' 128-192 px range
EXAMPLE_SIZE = (160, 160)


def label_space(family: str) -> list[str] | None:
    """The classes (in output order) of weights trained for dataset ``family``; None for a family we have none of.

    Semantic weights files hold tensors only, so the label space is known from the family the file is named after:
    the default file learned the embedded VOC shapes (not the 21 VOC classes), the others a real dataset's space,
    which its embedded mini dataset shares.
    """
    if family == default_family(TASK):
        return list(CLASSES)
    if family == "cityscapes":
        from harness.datasets.cityscapes import TRAIN_CLASSES

        return list(TRAIN_CLASSES)
    if family == "ade20k":
        from harness.labels.ade20k import ADE20K_CLASSES

        return list(ADE20K_CLASSES)
    return None


#: what the trainer's ``info().extra["trained_on"]`` says per family
TRAINED_ON = {"voc": "voc-mini 2012-train", "cityscapes": "cityscapes-mini train", "ade20k": "ade20k-mini training"}


@dataclass(frozen=True)
class Binding:
    """The weights a model predicts with and the label space they were trained for."""

    family: str
    weights: Path
    classes: list[str]


class InRepoSegmentationAdapter(Adapter):
    """Binds weights per dataset family; subclasses build their predictor from the bound file in ``load``."""

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {"threads": "torch threads during predict (default 1)"}

    shipped_weights_dir = WEIGHTS_DIR

    task = TASK
    runs_by_default = True
    batch_invariant = True
    model_name = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._binding: Binding | None = None

    def has_weights_for(self, dataset: DatasetInfo) -> bool:
        if self.checkpoint is not None or dataset.task != TASK:
            return True
        try:
            weights_for(TASK, self.model_name, dataset, lambda other, _: label_space(other) == list(dataset.classes))
        except BenchError:
            return False
        return True

    def _bind(self, family: str, dataset: DatasetInfo | None = None) -> Binding:
        classes = label_space(family)
        if self.checkpoint is not None:
            if classes is None:  # the user's weights, for a label space we cannot name: keep the default's names
                family, classes = default_family(TASK), list(CLASSES)
            return Binding(family, self.checkpoint, classes)
        if dataset is None:
            return Binding(family, default_weights(TASK, self.model_name), list(CLASSES))
        # a dataset of another family whose classes are one we have weights for (e.g. the VOC shapes' under
        # another name) gets that family's weights
        weights = weights_for(TASK, self.model_name, dataset,
                              lambda other, _: label_space(other) == list(dataset.classes))
        family = weights_family(TASK, self.model_name, weights)
        classes = label_space(family)
        if classes is None:
            raise BenchError(f"weights {weights.name} are for dataset family {family!r}, whose classes model "
                             f"{self.name!r} does not know")
        return Binding(family, weights, classes)

    @property
    def binding(self) -> Binding:
        """The default dataset's weights until ``check_compatible`` binds the dataset's."""
        if self._binding is None:
            binding = self._bind(default_family(TASK))
            self.load(binding)
            self._binding = binding
        return self._binding

    def load(self, binding: Binding) -> None:
        """Build the predictor from ``binding.weights`` (a one-line error if the file does not fit)."""
        raise NotImplementedError

    def check_compatible(self, dataset: DatasetInfo) -> None:
        binding = self._bind(dataset_family(dataset), dataset)
        if binding != self._binding:
            self.load(binding)
            self._binding = binding
        super().check_compatible(dataset)

    def weights_file(self) -> Path:
        if self._binding is not None:
            return self._binding.weights
        return self.checkpoint if self.checkpoint is not None else default_weights(TASK, self.model_name)


class SegmentationNetworkAdapter(PinnedThreads, InRepoSegmentationAdapter):
    """A network from ``networks.ARCHITECTURES`` (named by ``model_name``) with its committed (or the user's)
    weights."""

    _network: Any = None

    def load(self, binding: Binding) -> None:
        """Forget the network of other weights; the bound one is built on first use (``network``), so a fully
        cached run never imports torch (issue 15)."""
        self._network = None

    @property
    def network(self) -> Any:
        binding = self.binding  # binds the default weights on first use
        if self._network is None:
            from adapters.inrepo.weights import load_into
            from adapters.inrepo.semantic.networks import build_network

            network = build_network(self.model_name, len(binding.classes))
            load_into(network, binding.weights, self.trust_checkpoint)
            self._network = network.to(self.device).eval()
        return self._network

    def info(self) -> AdapterInfo:
        binding = self.binding
        key = count_key(f"adapters.inrepo.semantic.networks:{self.model_name}", f"classes={len(binding.classes)}",
                        binding.weights)
        parameters = known_parameters(key, self._network, lambda: self.network)
        trained_on = "--checkpoint" if self.checkpoint is not None else TRAINED_ON.get(binding.family, binding.family)
        return AdapterInfo(name=self.name, task=TASK, classes=list(binding.classes), parameters=parameters,
                           extra={"architecture": self.model_name, "trained_on": trained_on,
                                  "weights": binding.weights.name})

    def prepare(self, sample: Sample) -> Any:
        """The image as a (1, 3, H, W) uint8 tensor (run ahead of the model, in a loader worker when there are
        some): a quarter of the bytes of the float input, normalised on the device in ``predict``."""
        import torch

        image = sample.load_image()
        return torch.from_numpy(image.transpose(2, 0, 1)[None].copy(order="C"))  # a writable (1, 3, H, W) copy

    def predict(self, samples: Sequence[Sample]) -> list[SemanticPrediction]:
        """One image at a time, edge-padded to a multiple of the network's stride, with torch pinned to
        ``options["threads"]`` threads (default 1): a label map never depends on the batch or the process count
        (see ``adapters.inrepo.inference``)."""
        with fixed_inference(self.options):
            return [SemanticPrediction(label_map=self._label_map(sample)) for sample in samples]

    @classmethod
    def supports_multi_scale(cls) -> bool:
        """``bench run --multi-scale``: the networks are fully convolutional, so any input size runs."""
        return True

    def _label_map(self, sample: Sample) -> np.ndarray:
        import torch

        from adapters.inrepo.semantic.data import MEAN, STD

        pixels = sample.prepared if sample.prepared is not None else self.prepare(sample)
        batch = pixels.to(self.device, non_blocking=True)
        self.mark("transfer")
        # exactly ``data.normalise``: (x - 127.5) / 64 is exact in float32 for 8-bit x, on any device
        batch = (batch.to(torch.float32) - MEAN) / STD
        scales = self.options.get("multi_scale")
        if not scales:
            labels = self._logits(batch)[0].argmax(dim=0)
        else:
            labels = multi_scale_probabilities(self._logits, batch, scales).argmax(dim=0)
        self.mark("model")
        label_map = labels.to(torch.uint8).cpu().numpy()
        self.mark("postprocess")
        return label_map

    def _logits(self, batch: Any) -> Any:
        """(1, C, H, W) logits of one normalised image, which is edge-padded to a multiple of the network's
        stride on the way in and cropped back on the way out."""
        import torch

        height, width = batch.shape[-2:]
        stride = self.network.stride
        pad_bottom, pad_right = -height % stride, -width % stride
        if pad_bottom or pad_right:
            batch = torch.nn.functional.pad(batch, (0, pad_right, 0, pad_bottom), mode="replicate")
        return self.network(batch)[:, :, :height, :width]

    def torch_module(self):
        return self.network

    def example_input(self, batch_size: int):
        import torch

        generator = torch.Generator().manual_seed(0)
        return torch.randn((batch_size, 3, *EXAMPLE_SIZE), generator=generator)


def multi_scale_probabilities(logits_of: Any, batch: Any, scales: Sequence[float]) -> Any:
    """Multi-scale test (as in mmseg's and DeepLab's evaluation): the image is resized by each factor (bilinear),
    its logits resized back to the image's size (bilinear) and turned into class probabilities, and the
    probabilities averaged over the scales; (C, H, W).  Scale 1 is the plain prediction."""
    from torch.nn import functional as F

    if not scales:
        raise BenchError("a multi-scale test needs at least one scale")
    height, width = batch.shape[-2:]
    total: Any = None
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = batch if size == (height, width) else F.interpolate(batch, size=size, mode="bilinear",
                                                                     align_corners=False)
        logits = logits_of(scaled)
        if logits.shape[-2:] != (height, width):
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        probabilities = logits[0].softmax(dim=0)
        total = probabilities if total is None else total + probabilities
    return total / len(scales)


@ADAPTERS.register("fcn")
class FCNAdapter(SegmentationNetworkAdapter):
    """Fully convolutional network: stride-8 backbone, 1x1 classifier, bilinear upsampling."""

    model_name = "fcn"


@ADAPTERS.register("unet")
class UNetAdapter(SegmentationNetworkAdapter):
    """U-Net: three poolings, a decoder with skip connections at every scale."""

    model_name = "unet"


@ADAPTERS.register("aspp")
class ASPPAdapter(SegmentationNetworkAdapter):
    """DeepLabv3-style: dilated backbone and an atrous spatial pyramid pooling head with image pooling."""

    model_name = "aspp"


@ADAPTERS.register("pspnet")
class PSPNetAdapter(SegmentationNetworkAdapter):
    """PSPNet: dilated backbone and a pyramid pooling module (1, 2, 3, 6 bins); see ``semantic.pspnet``."""

    model_name = "pspnet"


@ADAPTERS.register("majority-class")
class MajorityClassAdapter(InRepoSegmentationAdapter):
    """The trivial baseline: every pixel gets the class most frequent among the training split's pixels.

    Its "weights" are the training class frequencies, committed like any other model's, so the baseline is
    fixed by the training data rather than by whatever split it is run on.
    """

    model_name = "majority-class"

    _frequencies: np.ndarray | None = None

    def load(self, binding: Binding) -> None:
        """Forget other weights' frequencies; the bound ones are read on first use (torch), and the majority
        class is remembered per weights file, so a fully cached run never imports torch (issue 15)."""
        self._frequencies = None

    @property
    def class_frequencies(self) -> np.ndarray:
        binding = self.binding
        if self._frequencies is None:
            import torch

            state = load_state_dict(binding.weights, self.trust_checkpoint)
            frequencies = state.get("class_frequencies")
            if not isinstance(frequencies, torch.Tensor) or tuple(frequencies.shape) != (len(binding.classes),):
                raise BenchError(f"expected 'class_frequencies' of shape ({len(binding.classes)},)", binding.weights)
            self._frequencies = frequencies.double().numpy()
        return self._frequencies

    @property
    def majority(self) -> int:
        binding = self.binding
        if self._frequencies is not None:
            return int(np.argmax(self._frequencies))
        key = count_key("adapters.inrepo.semantic.adapter:MajorityClassAdapter.majority",
                        f"classes={len(binding.classes)}", binding.weights)
        return remembered(key, lambda: int(np.argmax(self.class_frequencies)))

    def info(self) -> AdapterInfo:
        classes = self.binding.classes
        return AdapterInfo(name=self.name, task=TASK, classes=list(classes), parameters=0,
                           extra={"majority_class": classes[self.majority], "weights": self.binding.weights.name})

    def predict(self, samples: Sequence[Sample]) -> list[SemanticPrediction]:
        majority = self.majority
        return [SemanticPrediction(label_map=np.full(sample.load_image().shape[:2], majority, np.uint8))
                for sample in samples]
