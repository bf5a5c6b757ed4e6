"""Model adapters behind one predict interface, registered by name and discovered from this package.

A registered entry is an ``Adapter`` subclass; ``--model NAME`` picks it, ``--model PREFIX:ARG`` picks the
entry registered as ``"PREFIX:"`` and passes ARG (e.g. ``mmdet:rtmdet_tiny_8xb32-300e_coco``).
"""
from harness.registry import Registry

ADAPTERS: Registry = Registry("model", ("adapters",))
