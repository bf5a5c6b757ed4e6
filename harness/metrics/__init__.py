"""Metrics: registered by name, discovered from this package."""
from harness.core.catalog import METRICS  # the registry lives in core; modules here fill it

__all__ = ["METRICS"]
