"""The adapter all in-repo top-down keypoint models share: prompt boxes -> crops -> network -> image coordinates.

The people of one sample are cropped into one tensor, so the network runs once per image (in chunks of
``max_people``), and each person's keypoints go back to the image through the inverse of the very matrix that
cropped it.  Never across images: a network's float output for a crop changes in the last bits with the batch it
is computed in, so batching people of several images would make a pose depend on ``--batch-size`` and on the
number of processes (see ``adapters.inrepo.inference``).

Each model ships weights per skeleton (``skeletons.py``): COCO-17 until the adapter is bound to a dataset, then
the skeleton that dataset's keypoint names spell (``check_compatible``), so ``weights_file()``, ``info()`` and
the fingerprint describe the weights that will actually run.

Nothing here imports torch: the networks live in their own modules (``heatmap.py``, ...), named by
``network_path`` and imported when a network is built (``load``/``predict``), so listing the models and a fully
cached re-run stay torch-free; ``info()`` takes the input size from the adapter class and the parameter count
from ``adapters.inrepo.parameter_count`` (counted once from the built network, then remembered).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.core.adapter import Adapter, AdapterInfo, load_state_dict
from adapters.inrepo.weights import WEIGHTS_DIR
from adapters.inrepo.inference import PinnedThreads, fixed_inference
from adapters.inrepo.parameter_count import count_key, known_parameters
from adapters.inrepo.keypoints.crop import DEFAULT_PADDING, crop_matrix, invert, transform_points, warp
from adapters.inrepo.keypoints.skeletons import COCO17, Skeleton, skeleton_weights, skeleton_of
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.core.structures import KeypointsPrediction, PersonBoxes, Sample

__all__ = ["TopDownAdapter", "skeleton_weights", "prompt_boxes"]


class TopDownAdapter(PinnedThreads, Adapter):
    """Subclasses set ``model_name``, ``network_path`` (``"module:Class"`` of a ``KeypointNet``, imported only
    when the network is built) and ``input_hw`` (the network's crop size, equal to its class's ``input_hw``).

    ``options["threads"]`` sets torch's thread count during ``predict`` (restored afterwards); the default, one
    thread, suits these tiny networks: a second thread buys little on 64x48 crops and, on a machine shared with
    other jobs, OpenMP threads waiting for a busy core can make a step ten times slower.
    """

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {"threads": "torch threads during predict (default 1)"}

    shipped_weights_dir = WEIGHTS_DIR

    task = "keypoints"
    runs_by_default = True  # committed weights, no download: part of `bench run --task keypoints`
    batch_invariant = True
    model_name: str = ""
    #: ``"module:Class"`` of the network; its module imports torch, so it is imported in ``network_type()`` only
    network_path: str = ""
    #: the network's input (height, width), None for a network that sees no pixels; ``info()`` reports it
    #: without building the network (a test checks it equals the network class's ``input_hw``)
    input_hw: tuple[int, int] | None = None
    #: people per forward pass; bounds memory on images with many prompts
    max_people = 256
    #: ``options["flip_test"]`` (``bench run --flip-test``) averages with the mirrored crop: networks with heatmap
    #: outputs (``flip_output``) only
    @classmethod
    def supports_flip_test(cls) -> bool:
        return hasattr(cls.network_type(), "flip_output")

    @classmethod
    def network_type(cls) -> type:
        """The network class (imports its module, hence torch)."""
        module, _, name = cls.network_path.partition(":")
        return getattr(importlib.import_module(module), name)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._network = None
        self.skeleton: Skeleton = COCO17

    @classmethod
    def build_network(cls, num_joints: int = COCO17.num_joints):
        return cls.network_type()(num_joints=num_joints)

    def weights_file(self) -> Path:
        return self.checkpoint if self.checkpoint is not None else skeleton_weights(self.model_name, self.skeleton)

    def check_compatible(self, dataset: DatasetInfo) -> None:
        """Bind to the dataset's skeleton (its weights are loaded from then on), then the usual checks."""
        if dataset.task == self.task:
            skeleton = skeleton_of(dataset.keypoint_names, f"dataset {dataset.name!r}")
            if not self.has_weights_for(dataset):
                raise BenchError(f"model {self.name!r} has no committed weights for {skeleton.name} keypoints "
                                 f"(dataset {dataset.name!r}); train them with `bench train --task keypoints --model "
                                 f"{self.model_name} --dataset NAME` or pass --checkpoint")
            if skeleton != self.skeleton:
                self.skeleton, self._network = skeleton, None
        super().check_compatible(dataset)

    def has_weights_for(self, dataset: DatasetInfo) -> bool:
        """Whether weights for the dataset's skeleton exist (a --checkpoint always counts); a default ``bench
        run`` leaves out the models without."""
        if self.checkpoint is not None:
            return True
        try:
            skeleton = skeleton_of(dataset.keypoint_names, f"dataset {dataset.name!r}")
        except BenchError:
            return True  # check_compatible refuses it with the skeleton message
        return skeleton_weights(self.model_name, skeleton).is_file()

    @property
    def network(self):
        if self._network is None:
            network = self.build_network(self.skeleton.num_joints)
            path = self.weights_file()
            state = load_state_dict(path, self.trust_checkpoint)
            try:
                network.load_state_dict(state)
            except RuntimeError as exc:  # torch lists every mismatch; the first one names the problem
                lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
                detail = lines[1] if len(lines) > 1 else lines[0]
                raise BenchError(f"weights do not fit the {self.model_name!r} network for {self.skeleton.name} "
                                 f"keypoints ({detail})", path) from None
            self._network = network.eval().to(self.device)
        return self._network

    def info(self) -> AdapterInfo:
        key = count_key(self.network_path, f"num_joints={self.skeleton.num_joints}", self.weights_file())
        return AdapterInfo(
            name=self.name,
            task="keypoints",
            keypoint_names=list(self.skeleton.keypoint_names),
            input_size=self.input_hw,
            parameters=known_parameters(key, self._network, lambda: self.network),
            extra={"crop_padding": DEFAULT_PADDING, "weights": str(self.weights_file()),
                   "skeleton": self.skeleton.name},
        )

    def predict(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        with fixed_inference(self.options):
            return [self._predict_sample(sample) for sample in samples]

    def _predict_sample(self, sample: Sample) -> KeypointsPrediction:
        import torch

        network = self.network
        input_hw = tuple(network.input_hw)
        boxes = prompt_boxes(sample)
        image = sample.load_image() if network.uses_image and len(boxes) else None
        matrices = [crop_matrix(box, input_hw) for box in boxes]
        joints = self.skeleton.num_joints
        total = len(boxes)
        coords = np.zeros((total, joints, 2), np.float64)
        confidence = np.zeros((total, joints), np.float64)
        for start in range(0, total, self.max_people):
            stop = min(start + self.max_people, total)
            if image is not None:
                crops = np.stack([warp(image, matrix, input_hw) for matrix in matrices[start:stop]])
                batch = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float()
            else:
                batch = torch.zeros((stop - start, 3, *input_hw), device=self.device)
            output = network(batch)
            if self.options.get("flip_test"):
                output = flip_test_output(network, output, batch, self.skeleton.flip_pairs)
            xy, conf = network.decode(output)
            coords[start:stop] = xy.double().cpu().numpy()
            confidence[start:stop] = conf.double().cpu().numpy()
        if total:
            coords = transform_points(coords, np.stack([invert(matrix) for matrix in matrices]))
        keypoints = np.concatenate([coords, confidence[:, :, None]], axis=-1)
        return KeypointsPrediction(
            keypoints=keypoints.reshape(-1, joints, 3),
            scores=confidence.mean(axis=1) if total else np.zeros(0),
            boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        )


def flip_test_output(network, output, batch, flip_pairs):
    """Flip test: the mean of the output and the network's output on the mirrored crops, mirrored back with
    left/right joints swapped (``network.flip_output``).  A crop mirrors pixel x to W-1-x and the stride-s cells
    mirror exactly with it (cell centres at s*i + (s-1)/2), so no shift is needed."""
    order = list(range(network.num_joints_of(output)))
    for left, right in flip_pairs:
        order[left], order[right] = right, left
    return (output + network.flip_output(network(batch.flip(-1)), order)) / 2


def prompt_boxes(sample: Sample) -> np.ndarray:
    """The (M, 4) xywh boxes a top-down model must estimate a pose in; no prompts means no people."""
    prompts = sample.prompts
    if prompts is None:
        return np.zeros((0, 4))
    if not isinstance(prompts, PersonBoxes):
        raise BenchError(
            f"sample {sample.sample_id}: top-down keypoint models need PersonBoxes prompts, "
            f"got {type(prompts).__name__}"
        )
    boxes = np.asarray(prompts.boxes, dtype=np.float64).reshape(-1, 4)
    if not np.isfinite(boxes).all():
        raise BenchError(f"sample {sample.sample_id}: a prompt box is not finite")
    return boxes
