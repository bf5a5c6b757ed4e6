"""Deterministic generators of small datasets in the native layouts of the real benchmarks."""
