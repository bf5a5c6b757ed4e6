"""Semantic label maps as PNGs in the dataset's own encoding (``label-png``), one file per image.

The dataset says how its files store classes (``DatasetInfo.extra["label_png"]``): ``values[i]`` is the value
stored for evaluation class ``i``, ``none`` the value meaning "no class" (a prediction of it is a false negative
of the true class), and ``palette`` whether the PNG carries the VOC colour map.  Cityscapes stores labelIds
(trainId i -> its labelId, no class -> 0 'unlabeled'), ADE20K 1..150 (0 = other), VOC palette indices 0..20 with
255.  Files are ``predictions/<sample id>.png``: for Cityscapes ``<city>/<frame>.png``, which cityscapesscripts
matches to its ground truth by the frame id in the name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.io.imageio import read_label_png, voc_palette, write_label_png
from harness.core.structures import Sample, SemanticPrediction
from harness.submissions import SUBMISSIONS
from harness.core.submission import PredictionSource, SubmissionFormat

NO_CLASS = 255  # the evaluation-space value of "no class"


def encoding(info: Any) -> tuple[np.ndarray, np.ndarray, list[int] | None]:
    """(encode table: eval index -> stored value, decode table: stored value -> eval index or -1, palette)."""
    spec = info.extra.get("label_png") or {"values": list(range(len(info.classes))), "none": NO_CLASS}
    values = [int(v) for v in spec["values"]]
    encode = np.full(256, int(spec["none"]), np.uint8)
    encode[: len(values)] = values
    decode = np.full(256, -1, np.int32)
    decode[int(spec["none"])] = NO_CLASS
    decode[values] = np.arange(len(values))
    return encode, decode, voc_palette() if spec.get("palette") == "voc" else None


@SUBMISSIONS.register("label-png")
class LabelPngs(SubmissionFormat):
    name = "label-png"
    entry = "predictions"

    def __init__(self, info: Any, out_dir: Path) -> None:
        super().__init__(info, out_dir)
        self.encode, _, self.palette = encoding(info)

    def add(self, sample: Sample, prediction: Any) -> list[dict[str, Any]]:
        labels = np.asarray(prediction.label_map)
        if labels.ndim != 2 or labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() > 255)):
            raise PredictionError(f"item {sample.sample_id!r}: label map must be a 2-D array of 0..255 integers, "
                                  f"got {labels.dtype} {labels.shape}")
        write_label_png(self.path / f"{sample.sample_id}.png", self.encode[labels], self.palette)
        return []

    @classmethod
    def reader(cls, info: Any, path: Path) -> PredictionSource:
        return LabelPngSource(info, Path(path))


class LabelPngSource(PredictionSource):
    def __init__(self, info: Any, root: Path) -> None:
        if not root.is_dir():
            raise PredictionError("prediction folder not found", root)
        self.info = info
        self.root = root
        _, self.decode, _ = encoding(info)

    def predict(self, sample: Sample) -> SemanticPrediction:
        path = self.root / f"{sample.sample_id}.png"
        if not path.is_file():
            raise PredictionError(f"no prediction for item {sample.sample_id!r}", path)
        try:
            stored = read_label_png(path)
        except DataError as exc:
            raise PredictionError(str(exc)) from None
        if stored.ndim != 2 or stored.dtype != np.uint8:
            raise PredictionError(f"expected an 8-bit single-channel label PNG, got {stored.dtype} {stored.shape}", path)
        labels = self.decode[stored]
        if (labels < 0).any():
            bad = np.unique(stored[labels < 0])[:8].tolist()
            raise PredictionError(f"label values {bad} are not in {self.info.name}'s encoding", path)
        return SemanticPrediction(label_map=labels.astype(np.uint8))

    def unmatched(self, sample_ids: set[Any]) -> list[str]:
        known = {f"{sample_id}.png" for sample_id in sample_ids}
        extra = [p for p in sorted(self.root.rglob("*.png")) if p.relative_to(self.root).as_posix() not in known]
        return [f"{p}: a prediction for no item of the dataset" for p in extra[:5]]
