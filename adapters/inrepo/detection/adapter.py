"""The adapters: ``centernet`` (detection), ``centernet-mask`` (instance), both run on the embedded data by default.

Each image runs through the network on its own, zero-padded at its bottom and right to the model's input size
(the 192 x 192 zero canvas the networks were trained on), or a larger image to the next multiple of 16 (the
encoder's stride).  Image pixels keep their coordinates, detections need no rescaling, cells in the padding never
produce detections, and an image's detections do not depend on the other images of its batch (see
``adapters.inrepo.inference``; padding a batch to its largest image made AP change with the batch size).
Labels are ``category_ids[k]`` of the checkpoint for class index k, and ``check_compatible`` refuses a dataset
whose class names or ids differ.

A model has one checkpoint per dataset family it was trained on (``detection_<model>.pt`` for the embedded COCO
shapes, ``detection_<model>_cityscapes.pt``, ...): ``check_compatible`` binds the dataset's (or the file whose
classes and ids the dataset has) before anything is fingerprinted or predicted (a ``--checkpoint`` always wins),
and the classes come from the bound checkpoint.

Nothing here imports torch: each adapter names its network (``network_path = "module:Class"``), imported when
the network is built to predict, and ``info()`` / ``check_compatible`` take the checkpoint's classes, category ids
(``detector_weights.label_space``) and the parameter count (``adapters.inrepo.parameter_count``) from what was
remembered per weights file the first time, so a fully cached re-run never loads a checkpoint.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.inrepo.weights import WEIGHTS_DIR
from harness.core.adapter import Adapter, AdapterInfo
from adapters.inrepo.detection.detector_weights import PREFIX, Checkpoint, label_space, weights_for
from adapters.inrepo.parameter_count import count_key, known_parameters
from adapters.inrepo.weights import default_weights
from adapters.inrepo.inference import PinnedThreads, fixed_inference
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.core.structures import DetectionPrediction, Sample

#: (height, width) of the training canvas, which the embedded images are at most: every image is padded to it at
#: least, and ``bench throughput`` times the network at it
INPUT_SIZE = (192, 192)
PAD_MULTIPLE = 16
#: instance models keep their 20 best detections (with masks): on the embedded val split 50 gain 0.002 mask AP
#: at half the speed, as the mask head costs far more than the boxes
MASK_DETECTIONS = 20


class InRepoDetectionAdapter(PinnedThreads, Adapter):
    """Shared loading, label mapping and thread handling; subclasses set ``model_name`` and implement
    ``_predict_image``.

    ``options["threads"]`` sets torch's thread count during ``predict`` (restored afterwards); the default, one
    thread, suits these small networks on a machine shared with other jobs (see the keypoint models).
    """

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {"threads": "torch threads during predict (default 1)"}

    shipped_weights_dir = WEIGHTS_DIR

    model_name = ""
    kind = ""
    #: ``"module:Class"`` of the network, built as ``Class(num_classes)``; its module imports torch, so it is
    #: imported only when the network is built ("" for a model without a network, e.g. ``prior-boxes``)
    network_path = ""
    runs_by_default = True
    batch_invariant = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._checkpoint: Checkpoint | None = None
        self._network: Any = None
        #: the committed weights bound by ``check_compatible`` (None: the default dataset's)
        self._bound: Path | None = None

    def weights_file(self) -> Path:
        if self.checkpoint is not None:
            return self.checkpoint
        return self._bound if self._bound is not None else default_weights(PREFIX, self.model_name)

    def bind(self, dataset: DatasetInfo) -> None:
        """Use the committed weights for ``dataset``'s family (the user's ``--checkpoint`` is never replaced)."""
        if self.checkpoint is not None:
            return
        path = weights_for(self.model_name, dataset, self.kind, self.trust_checkpoint)
        if path != self.weights_file():
            self._checkpoint, self._network = None, None
        self._bound = path

    def has_weights_for(self, dataset: DatasetInfo) -> bool:
        if self.checkpoint is not None:
            return True
        try:
            weights_for(self.model_name, dataset, self.kind, self.trust_checkpoint)
        except BenchError:
            return False
        return True

    @property
    def loaded(self) -> Checkpoint:
        if self._checkpoint is None:
            self._checkpoint = Checkpoint.load(self.weights_file(), self.kind, self.trust_checkpoint)
        return self._checkpoint

    def build(self, checkpoint: Checkpoint) -> Any:
        """The network (or fitted parameters) defined by ``checkpoint``: ``network_path``'s class for its
        classes, with its weights, in eval mode on the adapter's device."""
        if not self.network_path:
            return None
        network = network_class(self.network_path)(len(checkpoint.classes))
        load_network(network, checkpoint.network, self.weights_file())
        return network.eval().to(self.device)

    @property
    def network(self) -> Any:
        if self._network is None:
            self._network = self.build(self.loaded)
        return self._network

    def label_space(self) -> tuple[list[str], list[int]]:
        """The classes and category ids of the weights: remembered per file, else read from the checkpoint
        (the one this adapter then predicts with, so it is loaded once)."""
        return label_space(self.weights_file(), self.kind, self.trust_checkpoint, load=lambda: self.loaded)

    def parameters(self, num_classes: int) -> int:
        """The network's parameter count: remembered per weights file, else counted from the built network."""
        if not self.network_path:
            return 0
        key = count_key(self.network_path, f"num_classes={num_classes}", self.weights_file())
        return known_parameters(key, self._network, lambda: self.network)

    def info(self) -> AdapterInfo:
        classes, category_ids = self.label_space()
        return AdapterInfo(
            name=self.name, task=self.task, classes=classes, input_size=INPUT_SIZE,
            parameters=self.parameters(len(classes)),
            extra={"weights": str(self.weights_file()), "category_ids": category_ids},
        )

    def check_compatible(self, dataset: DatasetInfo) -> None:
        self.bind(dataset)
        super().check_compatible(dataset)
        _, category_ids = self.label_space()
        if dataset.category_ids and dataset.category_ids != category_ids:
            raise BenchError(
                f"model {self.name!r} writes category ids {category_ids} but dataset {dataset.name!r} "
                f"uses {dataset.category_ids}"
            )

    def labels_of(self, classes: np.ndarray) -> np.ndarray:
        return np.asarray(self.loaded.category_ids, np.int64)[np.asarray(classes, np.int64)]

    def predict(self, samples: Sequence[Sample]) -> list[DetectionPrediction]:
        with fixed_inference(self.options):
            return [self._predict_image(sample.load_image()) for sample in samples]

    def _predict_image(self, image: np.ndarray) -> DetectionPrediction:
        raise NotImplementedError


def network_class(path: str) -> Any:
    """The class ``"module:Class"`` names (importing its module, hence torch)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def padded_image(image: np.ndarray, device: str) -> Any:
    """(1, 3, H, W) float tensor of the image at the top-left, zero elsewhere; H x W is ``INPUT_SIZE``, or for a
    larger image its size rounded up to multiples of 16."""
    import torch

    height = max(INPUT_SIZE[0], -(-image.shape[0] // PAD_MULTIPLE) * PAD_MULTIPLE)
    width = max(INPUT_SIZE[1], -(-image.shape[1] // PAD_MULTIPLE) * PAD_MULTIPLE)
    canvas = np.zeros((1, height, width, 3), np.uint8)
    canvas[0, : image.shape[0], : image.shape[1]] = image
    return torch.from_numpy(canvas).to(device).permute(0, 3, 1, 2).float()


@ADAPTERS.register("centernet")
class CenterNetAdapter(InRepoDetectionAdapter):
    task = "detection"
    model_name = "centernet"
    kind = "centernet"
    network_path = "adapters.inrepo.detection.network:CenterNet"

    def torch_module(self) -> Any:
        return self.network

    def _predict_image(self, image: np.ndarray) -> DetectionPrediction:
        from adapters.inrepo.detection.postprocess import decode, xyxy_to_xywh

        heatmap, distances, _ = self.network(padded_image(image, self.device))
        [found] = decode(heatmap, distances, [image.shape[:2]])
        return DetectionPrediction(
            boxes=xyxy_to_xywh(found.boxes.double().cpu().numpy()),
            scores=found.scores.double().cpu().numpy(),
            labels=self.labels_of(found.classes.cpu().numpy()),
        )


@ADAPTERS.register("centernet-mask")
class CenterNetMaskAdapter(InRepoDetectionAdapter):
    """``torch_module`` is the dense part (encoder, heads, mask features); the per-RoI mask head is not timed."""

    task = "instance"
    model_name = "centernet-mask"
    kind = "centernet-mask"
    network_path = "adapters.inrepo.detection.network:CenterNetMask"

    def torch_module(self) -> Any:
        return self.network

    def _predict_image(self, image: np.ndarray) -> DetectionPrediction:
        import torch

        from adapters.inrepo.detection.network import expand_boxes
        from adapters.inrepo.detection.postprocess import decode, encode_masks, paste_masks, xyxy_to_xywh

        padded = padded_image(image, self.device)
        heatmap, distances, mask_features = self.network(padded)
        [found] = decode(heatmap, distances, [image.shape[:2]], max_detections=MASK_DETECTIONS)
        roi = expand_boxes(found.boxes)
        indexed = torch.cat([roi.new_zeros((len(roi), 1)), roi], dim=1)
        logits = self.network.masks(mask_features, padded, indexed).cpu()
        masks = paste_masks(logits, roi.cpu(), image.shape[0], image.shape[1])
        return DetectionPrediction(
            boxes=xyxy_to_xywh(found.boxes.double().cpu().numpy()),
            scores=found.scores.double().cpu().numpy(),
            labels=self.labels_of(found.classes.cpu().numpy()),
            masks=encode_masks(masks),
        )


def load_network(network: Any, state: dict[str, Any], path: Path) -> None:
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise BenchError(f"weights do not fit the network ({detail})", path) from None

