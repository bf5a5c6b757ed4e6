"""Dataset readers and embedded datasets, registered by name and discovered from this package.

A registered entry is a callable ``(data_root: Path | None, split: str | None, task: str) -> Dataset``;
``data_root=None`` means the embedded mini dataset in the same layout.
"""
from harness.core.catalog import DATASETS  # the registry lives in core; modules here fill it

__all__ = ["DATASETS"]
