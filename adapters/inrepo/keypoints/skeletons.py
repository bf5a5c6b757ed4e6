"""The skeletons the in-repo keypoint models are trained for, and which weights file each one loads.

One architecture per model name, one set of weights per skeleton: ``keypoints_<model>.pt`` for COCO-17 (the
embedded stick figures in the COCO layout) and ``keypoints_<model>_mpii.pt`` for MPII-16 (the same figures in
the MPII layout).  A model bound to a dataset (``check_compatible``) picks the skeleton whose keypoint names the
dataset uses, in order; nothing is ever remapped by position.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from adapters.inrepo.weights import family_weights
from harness.core.errors import BenchError
from harness.labels.keypoints import COCO_FLIP_PAIRS, COCO_KEYPOINT_NAMES, MPII_FLIP_PAIRS, MPII_KEYPOINT_NAMES



@dataclass(frozen=True)
class Skeleton:
    name: str
    keypoint_names: tuple[str, ...]
    #: index pairs that swap under a horizontal flip (training augmentation)
    flip_pairs: tuple[tuple[int, int], ...]
    #: the dataset family whose weights fit this skeleton (``adapters.inrepo.weights.family_weights``)
    family: str

    @property
    def num_joints(self) -> int:
        return len(self.keypoint_names)


COCO17 = Skeleton("COCO-17", tuple(COCO_KEYPOINT_NAMES), tuple(COCO_FLIP_PAIRS), "coco")
MPII16 = Skeleton("MPII-16", tuple(MPII_KEYPOINT_NAMES), tuple(MPII_FLIP_PAIRS), "mpii")
SKELETONS: tuple[Skeleton, ...] = (COCO17, MPII16)


def skeleton_of(keypoint_names: Sequence[str], what: str = "the dataset") -> Skeleton:
    """The skeleton with exactly these keypoint names in this order, or a one-line refusal naming the known ones."""
    for skeleton in SKELETONS:
        if tuple(keypoint_names) == skeleton.keypoint_names:
            return skeleton
    known = " and ".join(s.name for s in SKELETONS)
    raise BenchError(f"the in-repo keypoint models are trained for {known} keypoints; {what} uses "
                     f"{len(keypoint_names)} keypoints {list(keypoint_names)[:4]}...")


def skeleton_weights(model_name: str, skeleton: Skeleton = COCO17) -> Path:
    """The committed weights of an in-repo keypoint model for ``skeleton``: the one weights naming rule,
    ``keypoints_<model>[_<family>].pt`` (``adapters.inrepo.weights.family_weights``)."""
    return family_weights("keypoints", model_name, skeleton.family)
