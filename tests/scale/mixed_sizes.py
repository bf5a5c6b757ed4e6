"""Small mixed-size copies of the embedded datasets, in their native layouts, for the invariance tests.

Two of the embedded sets have a single image size (stick figures 256x192, Sintel pairs 160x64) and the others
only multiples of 16, so a model that pads a batch to its largest image, or to a stride, is not exercised by
them.  Each builder takes the first ``count`` samples of an embedded split and gives every sample its own size,
changing the annotations consistently:

* COCO (detection, instance, keypoints): images padded at the bottom and right with a flat grey, so every
  coordinate stays valid; RLE segmentations (crowds) are re-encoded at the new size; ``width``/``height`` change.
* VOC segmentation: images padded the same way, label PNGs padded with 255 (void, ignored), palette kept.
* Sintel: each pair becomes its own scene, both frames, the flow and the masks cropped to the pair's size at the
  top-left (the flow of the kept pixels is still the true flow).

Sizes include ones that are not multiples of 8 or 16 and, for COCO, ones larger than the 192 px detection canvas.
"""
from __future__ import annotations

import json
from itertools import cycle
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_codec

from harness.io.flowio import read_flo, write_flo

#: (extra rows, extra columns) at the bottom and right, one per sample in turn
PADS = ((0, 0), (13, 5), (37, 21), (3, 30), (45, 45), (0, 11), (22, 0), (7, 2))
#: (height, width) crops of the 64x160 Sintel pairs, one per pair in turn
CROPS = ((64, 160), (41, 97), (57, 130), (64, 111), (33, 160), (50, 75), (64, 143), (45, 120))
GREY = 90
VOID = 255


def _pad(pixels: np.ndarray, pad: tuple[int, int], value: int) -> np.ndarray:
    widths = ((0, pad[0]), (0, pad[1])) + ((0, 0),) * (pixels.ndim - 2)
    return np.pad(pixels, widths, constant_values=value)


def _padded_rle(segmentation: dict, height: int, width: int, pad: tuple[int, int]) -> dict:
    if isinstance(segmentation["counts"], list):
        rle = mask_codec.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    mask = _pad(mask_codec.decode(rle), pad, 0)
    encoded = mask_codec.encode(np.asfortranarray(mask))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def padded_coco(source: Path, annotation_name: str, split: str, out: Path, count: int) -> Path:
    """``out`` with ``annotations/<annotation_name>`` and ``<split>/`` holding the first ``count`` images, padded."""
    data = json.loads((source / "annotations" / annotation_name).read_text())
    images = data["images"][:count]
    pads = {}
    (out / "annotations").mkdir(parents=True)
    (out / split).mkdir()
    for image, pad in zip(images, cycle(PADS)):
        pixels = np.asarray(Image.open(source / split / image["file_name"]).convert("RGB"))
        padded = _pad(pixels, pad, GREY)
        Image.fromarray(padded).save(out / split / image["file_name"], quality=95)
        pads[image["id"]] = (pad, image["height"], image["width"])
        image["height"], image["width"] = int(padded.shape[0]), int(padded.shape[1])
    annotations = []
    for annotation in data["annotations"]:
        if annotation["image_id"] not in pads:
            continue
        pad, height, width = pads[annotation["image_id"]]
        if isinstance(annotation.get("segmentation"), dict):
            annotation["segmentation"] = _padded_rle(annotation["segmentation"], height, width, pad)
        annotations.append(annotation)
    data.update(images=images, annotations=annotations)
    (out / "annotations" / annotation_name).write_text(json.dumps(data))
    return out


def padded_voc(year_dir: Path, out: Path, count: int) -> Path:
    """A ``VOCdevkit/VOC2012`` under ``out`` with the first ``count`` segmentation images of ``val``, padded."""
    target = out / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (target / folder).mkdir(parents=True)
    ids = (year_dir / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[:count]
    for image_id, pad in zip(ids, cycle(PADS)):
        pixels = np.asarray(Image.open(year_dir / "JPEGImages" / f"{image_id}.jpg").convert("RGB"))
        Image.fromarray(_pad(pixels, pad, GREY)).save(target / "JPEGImages" / f"{image_id}.jpg", quality=95)
        labels = Image.open(year_dir / "SegmentationClass" / f"{image_id}.png")
        padded = Image.fromarray(_pad(np.asarray(labels), pad, VOID), mode="P")
        padded.putpalette(labels.getpalette())
        padded.save(target / "SegmentationClass" / f"{image_id}.png")
    (target / "ImageSets" / "Segmentation" / "val.txt").write_text("".join(f"{i}\n" for i in ids))
    (target / "class_names.txt").write_text((year_dir / "class_names.txt").read_text())
    return out


def cropped_sintel(training: Path, out: Path, count: int, render_pass: str = "clean") -> Path:
    """``out/training`` with the first ``count`` pairs of ``training``, each its own scene, cropped to its size."""
    pairs = []
    for scene in sorted(p for p in (training / render_pass).iterdir() if p.is_dir()):
        frames = sorted(scene.glob("frame_*.png"))
        pairs += [(scene.name, first.stem, second.stem) for first, second in zip(frames, frames[1:])]
    target = out / "training"
    for number, ((scene, first, second), (height, width)) in enumerate(zip(pairs[:count], cycle(CROPS))):
        name = f"pair_{number:02d}"
        for folder in (render_pass, "flow", "occlusions", "invalid"):
            (target / folder / name).mkdir(parents=True)
        for frame, new in ((first, "frame_0001"), (second, "frame_0002")):
            pixels = np.asarray(Image.open(training / render_pass / scene / f"{frame}.png"))
            Image.fromarray(pixels[:height, :width]).save(target / render_pass / name / f"{new}.png")
        write_flo(target / "flow" / name / "frame_0001.flo", read_flo(training / "flow" / scene / f"{first}.flo")[:height, :width])
        for folder in ("occlusions", "invalid"):
            mask = np.asarray(Image.open(training / folder / scene / f"{first}.png"))
            Image.fromarray(mask[:height, :width]).save(target / folder / name / "frame_0001.png")
    return out
