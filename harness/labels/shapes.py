"""The class names of the embedded shapes datasets (``harness.embedded.shapes_coco`` draws them, in this order).

Models trained on the embedded data need the names, not the generator: they import this table, so an in-repo
model never imports a data generator (``tests/core/test_import_direction.py``).
"""
from __future__ import annotations

#: category ids 1..5, in this order (``shapes_coco.CLASSES`` builds its ObjectClass list from it)
SHAPE_CLASSES: list[str] = ["circle", "square", "triangle", "cross", "ring"]
