"""Shared pieces of the parity tests (bench's adapters against the libraries' own inference).

The recipe of every parity test:

1. build the model the library's way, seed the random initialisation, then *calibrate* its BatchNorm layers:
   one forward pass on a real image with only the BN layers in training mode (cumulative statistics), so the
   random network's activations are normalised and its outputs vary (an uncalibrated random detector scores
   every box 0.52 and predicts two classes, which would let a wrong label mapping or colour order slip by);
2. save the weights as a checkpoint file, the way the library saves one;
3. run bench's adapter on that file (``--checkpoint``) and the library's high-level inference on the same
   files, one image per forward pass;
4. compare to 1e-5 in the dataset's coordinates and category ids;
5. run the adapter on the colour-swapped image and require the comparison to fail by a wide margin, so the
   comparison cannot pass for a model whose output ignores the colour order.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

from harness.core.structures import Sample
from tests.conftest import DATA

COCO_IMAGES = DATA / "coco-keypoints"
#: real images of several sizes and both orientations; 000000040083 is greyscale (R == G == B)
IMAGES = {
    "coco-785": COCO_IMAGES / "000000000785.jpg",  # 640 x 425
    "coco-40083": COCO_IMAGES / "000000040083.jpg",  # 500 x 333, greyscale
    "coco-196141": COCO_IMAGES / "000000196141.jpg",  # 640 x 429
    "voc-000001": DATA / "voc" / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000001.jpg",  # 353 x 500 (portrait)
    "voc-2011_000006": DATA / "voc" / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2011_000006.jpg",  # 500 x 375
    "cityscapes": DATA / "cityscapes" / "leftImg8bit" / "val" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png",
    "ade-1": DATA / "ade20k" / "ADEChallengeData2016" / "images" / "validation" / "ADE_val_00000001.jpg",  # 683 x 512
    "ade-3": DATA / "ade20k" / "ADEChallengeData2016" / "images" / "validation" / "ADE_val_00000003.jpg",  # 400 x 300
}
#: relative and absolute tolerance of every comparison
TOLERANCE = 1e-5
#: a colour-swapped run must miss the library's output by at least this much (1000x the tolerance)
MATERIAL = 1e-2


def sample(key: str, index: int = 0) -> Sample:
    return Sample(index, IMAGES[key], None)


def colour_swapped(original: Sample) -> Sample:
    """The same sample with its decoded image in BGR order: what a wrong colour convention would feed."""
    image = original.load_image()
    assert np.abs(image[..., 0].astype(int) - image[..., 2]).mean() > 5, "a colour check needs a colour image"
    return Sample(original.sample_id, original.image_path, original.target, image_path2=original.image_path2,
                  prompts=original.prompts, _decoded={0: np.ascontiguousarray(image[..., ::-1])})


def batch_norms(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@contextmanager
def calibrating(model: torch.nn.Module) -> Iterator[None]:
    """Inside: the model in eval mode except its BatchNorm layers, which accumulate fresh statistics."""
    norms = batch_norms(model)
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration passes
        norm.train()
    try:
        with torch.no_grad():
            yield
    finally:
        model.eval()


def calibrate(model: torch.nn.Module, forward: Callable[[], object]) -> None:
    with calibrating(model):
        forward()


def assert_close(name: str, ours: np.ndarray, theirs: np.ndarray) -> None:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs the library's {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE, atol=TOLERANCE, err_msg=name)


def discrepancy(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest absolute difference; infinite when the shapes differ (a different number of outputs)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        return float("inf")
    return float(np.abs(ours - theirs).max()) if ours.size else 0.0


def decode_rles(rles: list[dict], height: int, width: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros((0, height, width), dtype=bool)
    return np.moveaxis(mask_utils.decode([dict(r, counts=r["counts"].encode()) for r in rles]), -1, 0).astype(bool)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
