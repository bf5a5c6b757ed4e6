"""Scoring prediction files against ground-truth files, with no model in the loop (``bench eval``).

One module per format family (COCO json, label-map folders, .flo folders, MPII arrays); each registers a
``FileEvaluator`` under the task names it scores, so adding a format touches one file.
"""
from typing import TYPE_CHECKING

from harness.core.registry import Registry

if TYPE_CHECKING:
    from harness.file_eval.base import FileEvaluator

FILE_EVALUATORS: "Registry[FileEvaluator]" = Registry(
    "file-evaluation task", ("harness.file_eval",), symbol="FILE_EVALUATORS", group="bench.file_evaluators",
    base="harness.file_eval.base:FileEvaluator")

__all__ = ["FILE_EVALUATORS"]
