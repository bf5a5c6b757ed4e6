"""Checks at the boundaries where user files enter: numeric bounds before a C extension sees a value,
paths that stay inside the data root, schemas of YAML and records read back.  Every failure is a
``harness.core.errors.BenchError`` subclass whose one-line message names the file and the item."""
