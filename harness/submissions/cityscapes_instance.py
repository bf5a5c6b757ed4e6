"""``cityscapes-instance``: the results layout cityscapesscripts' ``evalInstanceLevelSemanticLabeling`` reads.

Layout under ``predictions/`` of the report folder (``entry``)::

    predictions/<city>/<frame>_pred.txt          one line per detection: <mask png> <labelId> <confidence>
    predictions/<city>/<frame>_<i>_<class>.png   binary mask of detection i, the size of the image

The reference finds, for ground truth ``<city>_<seq>_<frame>_gtFine_instanceIds.png``, the single ``*.txt`` file
anywhere under the results folder whose name matches ``<city>_<seq>_<frame>*.txt`` (none or several is an error);
mask paths are relative to the txt file's folder and must stay inside the results folder; a mask pixel is part
of the instance when its value, converted to 8-bit grey by Pillow, is not 0.  The reader follows the same rules
(so it also reads mmdetection's flat ``<frame>_leftImg8bit_pred.txt`` folders) and refuses, with one line
naming the file, what the reference would crash on or silently read differently (a mask listed twice, a
fractional labelId).  Lines of Cityscapes classes the reference does not evaluate (caravan, road, ...) are
checked and then dropped, as the reference skips them; the writer refuses them, so what it writes reads back
exactly.

Confidences are written with ``repr``, the shortest text that reads back as the same float64, so scores read
back compare equal to the ones the model produced and the metrics are identical to the bit.
"""
from __future__ import annotations

import fnmatch
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import PredictionError
from harness.io.jsonio import atomic_write_text
from harness.metrics.cityscapes import LABELS
from harness.metrics.cityscapes_instance import (
    INSTANCE_LABEL_IDS,
    KNOWN_LABEL_IDS,
    check_prediction,
    prediction_rles,
)
from harness.core.structures import DetectionPrediction, Sample
from harness.submissions import SUBMISSIONS
from harness.core.submission import PredictionSource, SubmissionFormat

_LABEL_NAMES = {label.label_id: label.name.replace(" ", "-") for label in LABELS}
_LABEL_NAMES[-1] = "license-plate"
LINE_FORMAT = "<relative mask png> <labelId> <confidence>"


def frame_of(sample: Sample) -> tuple[str, str]:
    """(city, frame) of a Cityscapes sample (``sample_id`` is ``<city>/<frame>``)."""
    city, _, frame = str(sample.sample_id).rpartition("/")
    return (sample.meta.get("city") or city), frame


def _image_size(sample: Sample) -> tuple[int, int]:
    target = sample.target
    if target is None or not hasattr(target, "height"):
        raise PredictionError(f"item {sample.sample_id!r}: the sample carries no image size (no DetectionTarget)")
    return int(target.height), int(target.width)


def _write_mask_png(path: Path, mask: np.ndarray) -> None:
    """A 1-bit PNG, written beside ``path`` and renamed over it (readers never see half a file)."""
    from PIL import Image

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(np.ascontiguousarray(mask, dtype=bool)).save(handle, format="PNG")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@SUBMISSIONS.register("cityscapes-instance")
class CityscapesInstanceSubmission(SubmissionFormat):
    name = "cityscapes-instance"
    entry = "predictions"

    def add(self, sample: Sample, prediction: Any) -> list[dict[str, Any]]:
        """Write the frame's masks, then its txt (last, so a txt never names a mask that is not there yet)."""
        from pycocotools import mask as mask_codec

        item = sample.sample_id
        labels, scores = check_prediction(prediction, item)
        foreign = sorted(set(labels.tolist()) - set(INSTANCE_LABEL_IDS))
        if foreign:  # they would not read back (the reader drops them as the reference skips them)
            raise PredictionError(f"item {item!r}: labelIds {foreign[:8]} are not evaluated instance classes "
                                  f"({', '.join(map(str, INSTANCE_LABEL_IDS))})")
        height, width = _image_size(sample)
        rles = prediction_rles(prediction, height, width, item)
        city, frame = frame_of(sample)
        folder = self.path / city
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i, (label, score, rle) in enumerate(zip(labels.tolist(), scores.tolist(), rles)):
            name = f"{frame}_{i}_{_LABEL_NAMES[label]}.png"
            _write_mask_png(folder / name, mask_codec.decode(rle).astype(bool))
            lines.append(f"{name} {label} {float(score)!r}\n")
        atomic_write_text(folder / f"{frame}_pred.txt", "".join(lines))
        return []

    @classmethod
    def reader(cls, info: Any, path: Path) -> "CityscapesInstanceFiles":
        return CityscapesInstanceFiles(Path(path))


class CityscapesInstanceFiles(PredictionSource):
    """Prediction txt files found under ``root`` the way the reference finds them."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise PredictionError("Cityscapes instance predictions must be a folder of <frame>*.txt files", root)
        self.root = Path(os.path.abspath(root))
        self.txt_files: list[Path] = sorted(
            Path(folder) / name for folder, _, names in os.walk(self.root) for name in names
            if name.endswith(".txt")
        )

    def _matches(self, frame: str) -> list[Path]:
        pattern = f"{frame}*.txt"
        return [p for p in self.txt_files if fnmatch.fnmatch(p.name, pattern)]

    def predict(self, sample: Sample) -> DetectionPrediction:
        _, frame = frame_of(sample)
        found = self._matches(frame)
        if not found:
            raise PredictionError(f"no prediction file {frame}*.txt for frame {sample.sample_id!r}", self.root)
        if len(found) > 1:
            shown = ", ".join(str(p.relative_to(self.root)) for p in found[:4])
            raise PredictionError(f"several prediction files for frame {sample.sample_id!r}: {shown}", self.root)
        return self.read_txt(found[0], _image_size(sample))

    def read_txt(self, txt: Path, size: tuple[int, int]) -> DetectionPrediction:
        """Parse one ``<frame>_pred.txt`` and its masks into a DetectionPrediction (labels = labelIds)."""
        from pycocotools import mask as mask_codec

        from harness.metrics.coco.masks import rle_boxes

        labels, scores, masks = [], [], []
        seen: dict[object, int] = {}
        try:
            with open(txt, encoding="utf-8") as handle:
                lines = list(handle)
        except (OSError, UnicodeDecodeError) as exc:
            raise PredictionError(f"cannot read prediction file ({exc.__class__.__name__})", txt) from None
        for number, line in enumerate(lines, start=1):
            where = f"line {number}"
            fields = line.split(" ")  # the reference splits on single spaces; the newline stays in the last field
            if len(fields) != 3:
                raise PredictionError(f"{where}: expected '{LINE_FORMAT}', got {line.rstrip()!r}", txt)
            relative, label_text, score_text = fields
            label = self._label(label_text, where, txt)
            score = self._score(score_text, where, txt)
            mask_path = self._mask_path(txt, relative, where)
            if mask_path in seen:
                raise PredictionError(f"{where}: mask {relative} is listed twice (also on line {seen[mask_path]})",
                                      txt)
            seen[mask_path] = number
            mask = self._read_mask(mask_path, size, where, txt)
            if label not in INSTANCE_LABEL_IDS:
                continue  # a Cityscapes class the reference does not evaluate: it skips the line too
            rle = mask_codec.encode(np.asfortranarray(mask.astype(np.uint8)))
            masks.append({"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")})
            labels.append(label)
            scores.append(score)
        return DetectionPrediction(boxes=rle_boxes(masks), scores=np.array(scores, dtype=np.float64),
                                   labels=np.array(labels, dtype=np.int64), masks=masks)

    @staticmethod
    def _label(text: str, where: str, txt: Path) -> int:
        try:
            value = float(text)  # the reference reads int(float(field))
        except ValueError:
            raise PredictionError(f"{where}: labelId {text.strip()!r} is not a number", txt) from None
        if not math.isfinite(value) or value != int(value) or int(value) not in KNOWN_LABEL_IDS:
            raise PredictionError(f"{where}: {text.strip()!r} is not a Cityscapes labelId (-1..33)", txt)
        return int(value)

    @staticmethod
    def _score(text: str, where: str, txt: Path) -> float:
        try:
            value = float(text)
        except ValueError:
            raise PredictionError(f"{where}: confidence {text.strip()!r} is not a number", txt) from None
        if not math.isfinite(value):
            raise PredictionError(f"{where}: confidence {text.strip()!r} is NaN or infinite", txt)
        return value

    def _mask_path(self, txt: Path, relative: str, where: str) -> Path:
        if os.path.isabs(relative):
            raise PredictionError(f"{where}: mask path {relative!r} must be relative to the txt file's folder", txt)
        path = os.path.abspath(os.path.join(txt.parent, relative))
        if os.path.commonpath([path, str(self.root)]) != str(self.root):
            raise PredictionError(f"{where}: mask path {relative!r} points outside the predictions folder", txt)
        return Path(path)

    @staticmethod
    def _read_mask(path: Path, size: tuple[int, int], where: str, txt: Path) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        if not path.is_file():
            raise PredictionError(f"{where}: mask file {path.name} is missing", txt)
        try:
            with Image.open(path) as image:
                from harness.io.validation.images import check_header

                check_header(image, path, PredictionError)  # a bomb is refused before decoding
                grey = np.asarray(image.convert("L"))  # as the reference reads masks
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise PredictionError(f"{where}: mask {path.name} cannot be decoded ({exc.__class__.__name__})",
                                  txt) from None
        if grey.shape != size:
            raise PredictionError(f"{where}: mask {path.name} is {grey.shape[1]}x{grey.shape[0]}, "
                                  f"the image {size[1]}x{size[0]}", txt)
        return grey != 0

    def unmatched(self, sample_ids: set[Any]) -> list[str]:
        frames = [str(s).rpartition("/")[2] for s in sample_ids]
        patterns = [f"{frame}*.txt" for frame in frames]
        return [f"{p.relative_to(self.root)}: no frame of the dataset matches it" for p in self.txt_files
                if not any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)]
