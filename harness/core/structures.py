"""Typed samples, targets and predictions, one small dataclass per task.

Arrays are numpy; coordinates are pixels in the original image, boxes are COCO ``[x, y, w, h]``, and
category ids are the dataset's own ids (``DatasetInfo.category_ids``), so predictions can be written in the
dataset's native results format without a translation table hiding somewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np


@dataclass
class Sample:
    """One evaluation item: an image (or image pair for flow) plus its target.

    Images load lazily through ``load_image`` so datasets can list thousands of samples cheaply.  ``prompts``
    carries task inputs that are not pixels, e.g. person boxes for top-down pose estimation.
    """

    sample_id: Union[int, str]
    image_path: Path | None
    target: Any
    image_path2: Path | None = None
    prompts: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: what ``Adapter.prepare`` returned for this sample, set by the run loop just before ``predict`` (None when
    #: nobody prepared it: ``predict`` must then do that work itself)
    prepared: Any = field(default=None, repr=False, compare=False)
    _decoded: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def load_image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB; decoded once, so the runner can decode before timing the model."""
        return self._load(0, self.image_path)

    def load_image2(self) -> np.ndarray:
        return self._load(1, self.image_path2)

    def preload(self) -> None:
        """Decode the images now (the runner keeps decoding time out of model latency)."""
        for slot, path in ((0, self.image_path), (1, self.image_path2)):
            if path is not None:
                self._load(slot, path)

    def decoded_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the images decoded so far (the run loop's warm-up waits until input shapes repeat)."""
        return tuple(tuple(self._decoded[slot].shape) for slot in sorted(self._decoded))

    def _load(self, slot: int, path: Path | None) -> np.ndarray:
        from harness.io.imageio import read_rgb

        if path is None:
            raise ValueError(f"sample {self.sample_id} has no image {slot + 1}")
        if slot not in self._decoded:
            self._decoded[slot] = read_rgb(path)
        return self._decoded[slot]


# --------------------------------------------------------------------------------------------- keypoints
@dataclass
class KeypointsTarget:
    """All annotated people of one image, as COCO person_keypoints stores them.

    ``keypoints`` is (N, K, 3) with COCO visibility flags v (0 unlabelled, 1 labelled occluded, 2 visible).
    ``head_boxes`` (N, 4) xywh is set by datasets scored with PCKh (MPII): the head size is 0.6 x its diagonal.
    """

    image_id: int
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) xywh
    keypoints: np.ndarray  # (N, K, 3) x, y, v
    areas: np.ndarray  # (N,)
    iscrowd: np.ndarray  # (N,) bool
    num_keypoints: np.ndarray  # (N,)
    ann_ids: np.ndarray  # (N,)
    head_boxes: np.ndarray | None = None  # (N, 4) xywh


@dataclass
class PersonBoxes:
    """Top-down prompts: the boxes a pose model should estimate a person in (from the GT or a detector)."""

    boxes: np.ndarray  # (M, 4) xywh
    scores: np.ndarray  # (M,)


@dataclass
class KeypointsPrediction:
    """People found in one image: (M, K, 3) x, y, per-joint confidence; a box and an instance score each."""

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray


# --------------------------------------------------------------------------------------- detection/instance
@dataclass
class DetectionTarget:
    """COCO-style objects of one image.  ``masks`` holds COCO segmentations (polygons or RLE) when present;
    ``ignore`` carries VOC's ``difficult`` or any dataset's do-not-score flag."""

    image_id: Union[int, str]
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) xywh
    labels: np.ndarray  # (N,) dataset category ids
    areas: np.ndarray  # (N,)
    iscrowd: np.ndarray  # (N,) bool
    ignore: np.ndarray | None = None  # (N,) bool
    masks: list[Any] | None = None
    ann_ids: np.ndarray | None = None


@dataclass
class DetectionPrediction:
    """Scored objects of one image; ``masks`` are COCO RLE dicts for instance segmentation."""

    boxes: np.ndarray  # (M, 4) xywh
    scores: np.ndarray  # (M,)
    labels: np.ndarray  # (M,) dataset category ids
    masks: list[dict[str, Any]] | None = None


# --------------------------------------------------------------------------------------------- semantic
@dataclass
class SemanticTarget:
    """A label map in the dataset's evaluation index space (0..C-1, ``ignore_index`` elsewhere)."""

    label_map: np.ndarray  # (H, W) integer
    instance_map: np.ndarray | None = None  # Cityscapes instanceIds, for iIoU


@dataclass
class SemanticPrediction:
    label_map: np.ndarray  # (H, W) integer, same index space as the target


# --------------------------------------------------------------------------------------------------- flow
@dataclass
class FlowTarget:
    """Ground-truth flow from frame 1 to frame 2, with the masks the Sintel/KITTI breakdowns need."""

    flow: np.ndarray  # (H, W, 2) float32
    valid: np.ndarray | None = None  # (H, W) bool; None = all valid
    occluded: np.ndarray | None = None  # (H, W) bool
    out_of_frame: np.ndarray | None = None  # (H, W) bool (Sintel "invalid")


@dataclass
class FlowPrediction:
    flow: np.ndarray  # (H, W, 2) float32
