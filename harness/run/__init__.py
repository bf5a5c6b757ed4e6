"""Running evaluations: runner, `bench run`, prediction cache, processes, confidence, latency, trainers."""
