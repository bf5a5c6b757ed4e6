"""Pictures and per-image analysis of a finished run: the report's charts, gallery, per-image table and the
TIDE-style detection error breakdown.

Everything here is built from the run's own files (``metrics.json`` and the official submission it wrote, read
back through ``SUBMISSIONS[fmt].reader``) plus the dataset, so a report can be rebuilt for any run folder and
nothing in the scoring path depends on it.  These are diagnostics, never the official numbers: those stay in
``metrics.json``, computed by the protocol's metrics.
"""
