"""Model adapters behind one predict interface, registered by name and discovered from this package.

A registered entry is an ``Adapter`` subclass (``harness.core.adapter``); ``--model NAME`` picks it,
``--model PREFIX:ARG`` picks the entry registered as ``"PREFIX:"`` and passes ARG (e.g.
``mmdet:rtmdet_tiny_8xb32-300e_coco``).  The registry itself, ``ADAPTERS``, lives in ``harness.core.adapter``
so that nothing in ``harness`` imports this package.
"""
