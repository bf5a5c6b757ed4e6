"""Optical flow as Middlebury ``.flo`` files in the Sintel layout (``flo``): ``predictions/<scene>/frame_NNNN.flo``.

``.flo`` stores float32, so the run scores the float32 flow it writes (``FlowPrediction.flow`` is float32 by
contract) and reading the files back gives the same bits.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import DataError, PredictionError
from harness.io.flowio import read_flo, write_flo
from harness.core.structures import FlowPrediction, Sample
from harness.submissions import SUBMISSIONS
from harness.core.submission import PredictionSource, SubmissionFormat


@SUBMISSIONS.register("flo")
class FloFiles(SubmissionFormat):
    name = "flo"
    entry = "predictions"

    def add(self, sample: Sample, prediction: Any) -> list[dict[str, Any]]:
        path = self.path / f"{sample.sample_id}.flo"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            write_flo(tmp, np.asarray(prediction.flow, dtype=np.float32))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return []

    @classmethod
    def reader(cls, info: Any, path: Path) -> PredictionSource:
        return FloSource(Path(path))


class FloSource(PredictionSource):
    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise PredictionError("prediction folder not found", root)
        self.root = root

    def predict(self, sample: Sample) -> FlowPrediction:
        path = self.root / f"{sample.sample_id}.flo"
        if not path.is_file():
            raise PredictionError(f"no prediction for item {sample.sample_id!r}", path)
        try:
            return FlowPrediction(flow=read_flo(path))
        except DataError as exc:
            raise PredictionError(str(exc)) from None

    def unmatched(self, sample_ids: set[Any]) -> list[str]:
        known = {f"{sample_id}.flo" for sample_id in sample_ids}
        extra = [p for p in sorted(self.root.rglob("*.flo")) if p.relative_to(self.root).as_posix() not in known]
        return [f"{p}: a prediction for no item of the dataset" for p in extra[:5]]
