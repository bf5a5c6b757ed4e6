"""Guards against stale numbers and lost writes: deterministic fingerprints, per-sample input stamps for the
prediction cache, and file locks around read-modify-write updates (leaderboards, baselines, cache chunks)."""
