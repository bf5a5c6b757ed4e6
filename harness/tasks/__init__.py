"""Tasks (what is measured), registered by name and discovered from this package."""
from harness.registry import Registry

TASKS: Registry = Registry("task", ("harness.tasks",))
