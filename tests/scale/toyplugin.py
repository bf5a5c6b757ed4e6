"""The example plugin (examples/bench-plugin-example, installed by `make test-env`) plus test-only models.

The toy task, dataset, metrics, submission format and ``toy-linear`` come from the installed plugin through its
entry points; the models below exist only to exercise failure paths (out-of-memory, a failing rank, a worse
model for leaderboards), so they stay here, registered on import.
"""
from __future__ import annotations

import numpy as np
import torch

from bench_plugin_example.toy import (  # noqa: F401  (re-exported for the tests)
    CENTERS, CLASSES, Sample, ToyAccuracy, ToyConfusion, ToyDataset, ToyJson, ToyLinear, ToyPrediction, ToyTarget,
    ToyTask, open_toy, save_weights, write_toy_data,
)
from harness.core.catalog import ADAPTERS


class _HungryLinear(torch.nn.Linear):
    """Runs out of 'memory' above two samples per batch, like a big model on a small GPU."""

    def forward(self, x):
        if x.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return super().forward(x)


@ADAPTERS.register("toy-hungry")
class ToyHungry(ToyLinear):
    runs_by_default = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        hungry = _HungryLinear(4, 3, bias=False)
        hungry.load_state_dict(self.module.state_dict())
        self.module = hungry


@ADAPTERS.register("toy-rank1-fails")
class ToyRankOneFails(ToyLinear):
    """Fails with a user error on rank 1 only: the other ranks must not wait for it forever."""

    runs_by_default = False

    def predict(self, samples):
        import os

        from harness.core.errors import PredictionError

        if os.environ.get("RANK") == "1":
            raise PredictionError(f"bad prediction for sample {samples[0].sample_id}")
        return super().predict(samples)


@ADAPTERS.register("toy-noisy")
class ToyNoisy(ToyLinear):
    """Same layer with perturbed weights: a second, worse model for leaderboards."""

    runs_by_default = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        noise = np.random.default_rng(11).normal(0.0, 1.5, CENTERS.shape)
        with torch.no_grad():
            self.module.weight.add_(torch.tensor(noise, dtype=torch.float32))
