"""Metrics: registered by name, discovered from this package."""
from harness.registry import Registry

METRICS: Registry = Registry("metric", ("harness.metrics",))
