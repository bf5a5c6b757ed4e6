"""Scoring prediction files against ground-truth files, with no model in the loop (``bench eval``).

One module per format family (COCO json, label-map folders, .flo folders, MPII arrays); each registers a
``FileEvaluator`` under the task names it scores, so adding a format touches one file.
"""
from harness.core.catalog import FILE_EVALUATORS  # the registry lives in core; modules here fill it

__all__ = ["FILE_EVALUATORS"]
