"""``voc-devkit``: the PASCAL VOC devkit's detection result files, one per class.

``predictions/comp4_det_<image set>_<class>.txt`` (comp4: any training data), one line per detection:
``<image id> <confidence> <xmin> <ymin> <xmax> <ymax>`` in the devkit's 1-based inclusive pixel corners
(``harness.core.boxes``: ``[x + 1, y + 1, x + w, y + h]`` of the harness box).  Every class gets its file, empty
or not, because ``VOCevaldet.m`` opens the file of each class it scores.

Numbers are written with ``repr`` (the shortest text that reads back as the same double) and the corners are
converted back by the exact inverse of the writer's conversion, so scoring the files gives the same numbers, to
the bit, as scoring the predictions in memory.  Within a file, lines keep sample order and, per sample, the
prediction's order: the devkit breaks score ties by file order, and so does the metric.

A sub-pixel box (continuous width under 1 px) has ``xmax < xmin`` in the devkit's inclusive corners; that is a
legal box (the devkit's width ``xmax - xmin + 1`` is still positive), so the reader refuses only ``xmax < xmin - 1``,
i.e. a negative width.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import PredictionError
from harness.io.jsonio import atomic_write_text
from harness.core.structures import DetectionPrediction, Sample
from harness.submissions import SUBMISSIONS
from harness.core.submission import PredictionSource, SubmissionFormat
from harness.core.boxes import Boxes, BoxMode

COMPETITION = "comp4"


def image_set_of(info: Any) -> str:
    """The devkit image set (``test``, ``val``, ...) of a VOC ``DatasetInfo`` (``split`` is ``<year>-<set>``)."""
    image_set = info.extra.get("image_set") if getattr(info, "extra", None) else None
    return str(image_set or str(info.split).split("-", 1)[-1])


def result_file_name(image_set: str, class_name: str) -> str:
    return f"{COMPETITION}_det_{image_set}_{class_name}.txt"


@SUBMISSIONS.register("voc-devkit")
class VocDevkitSubmission(SubmissionFormat):
    """Writes ``comp4_det_<set>_<class>.txt`` for every class of the dataset under ``predictions/``."""

    name = "voc-devkit"
    entry = "predictions"

    def __init__(self, info: Any, out_dir: Path) -> None:
        super().__init__(info, out_dir)
        self.class_of = dict(zip(info.category_ids, info.classes))

    def add(self, sample: Sample, prediction: DetectionPrediction) -> list[dict[str, Any]]:
        """One record per sample with detections: ``{"image_id", "detections": [[class id, score, x1, y1, x2,
        y2], ...]}`` in the prediction's order (devkit corners already, so ``finish`` only formats)."""
        item = sample.sample_id
        boxes = np.asarray(prediction.boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
        labels = np.asarray(prediction.labels).reshape(-1)
        if not (len(boxes) == len(scores) == len(labels)):
            raise PredictionError(f"item {item!r}: {len(boxes)} boxes, {len(scores)} scores and {len(labels)} labels")
        if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))):
            raise PredictionError(f"item {item!r}: non-finite detection score or box")
        if np.any(boxes[:, 2:] < 0):
            raise PredictionError(f"item {item!r}: negative box width or height")
        unknown = sorted({int(label) for label in labels} - set(self.class_of))
        if unknown:
            raise PredictionError(f"item {item!r}: category ids {unknown} are not classes of the dataset "
                                  f"(known: {min(self.class_of)}..{max(self.class_of)})")
        if not len(boxes):
            return []
        corners = Boxes(boxes, BoxMode.XYWH).to(BoxMode.VOC_DEVKIT).array
        rows = [[int(label), float(score), *(float(v) for v in corner)]
                for label, score, corner in zip(labels, scores, corners)]
        return [{"image_id": str(item), "detections": rows}]

    def finish(self, records: list[dict[str, Any]]) -> None:
        lines: dict[int, list[str]] = defaultdict(list)
        for record in records:
            for label, score, *corner in record["detections"]:
                lines[int(label)].append(" ".join([record["image_id"], *(repr(float(v)) for v in (score, *corner))]))
        image_set = image_set_of(self.info)
        for category_id, class_name in self.class_of.items():
            text = "".join(f"{line}\n" for line in lines.get(category_id, []))
            atomic_write_text(self.path / result_file_name(image_set, class_name), text)

    @classmethod
    def reader(cls, info: Any, path: Path) -> "VocDevkitSource":
        return VocDevkitSource(info, Path(path))


class VocDevkitSource(PredictionSource):
    """Reads every class file at once (``unmatched`` needs them all); ``predict`` hands out one image's detections,
    classes in dataset order and file order within a class, which is all the metric's tie order depends on."""

    def __init__(self, info: Any, folder: Path) -> None:
        if not folder.is_dir():
            raise PredictionError("not a folder of VOC devkit result files (comp4_det_<set>_<class>.txt)", folder)
        image_set = image_set_of(info)
        # image id -> (class id, score, devkit corners), classes in dataset order, file order within a class
        self.rows: dict[str, list[tuple[int, float, list[float]]]] = defaultdict(list)
        self.where: dict[str, str] = {}
        for category_id, class_name in zip(info.category_ids, info.classes):
            path = folder / result_file_name(image_set, class_name)
            if not path.is_file():
                raise PredictionError(f"missing result file {path.name} (the devkit needs one per class, empty "
                                      f"when there are no detections)", folder)
            self._read(path, int(category_id))

    def _read(self, path: Path, category_id: int) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PredictionError(f"cannot read ({exc})", path) from None
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"line {number}"
            if len(fields) != 6:
                raise PredictionError(f"{where}: expected '<image id> <score> <xmin> <ymin> <xmax> <ymax>', "
                                      f"got {len(fields)} fields", path)
            try:
                values = [float(v) for v in fields[1:]]
            except ValueError:
                raise PredictionError(f"{where}: not a number in {' '.join(fields[1:])!r}", path) from None
            if not all(math.isfinite(v) for v in values):
                raise PredictionError(f"{where}: non-finite score or coordinate", path)
            score, x1, y1, x2, y2 = values
            if x2 < x1 - 1 or y2 < y1 - 1:
                raise PredictionError(f"{where}: xmax < xmin - 1 or ymax < ymin - 1 (a negative width)", path)
            image_id = fields[0]
            self.rows[image_id].append((category_id, score, [x1, y1, x2, y2]))
            self.where.setdefault(image_id, f"{path.name} {where}")

    def predict(self, sample: Sample) -> DetectionPrediction:
        rows = self.rows.get(str(sample.sample_id), [])
        return DetectionPrediction(
            boxes=Boxes(np.array([r[2] for r in rows], dtype=np.float64), BoxMode.VOC_DEVKIT).xywh(),
            scores=np.array([r[1] for r in rows], dtype=np.float64),
            labels=np.array([r[0] for r in rows], dtype=np.int64),
        )

    def unmatched(self, sample_ids: set[Any]) -> list[str]:
        known = {str(i) for i in sample_ids}
        return [f"{self.where[image_id]}: image {image_id!r} is not in the image set"
                for image_id in self.rows if image_id not in known]
