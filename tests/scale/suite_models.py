"""Toy models that misbehave the ways a suite entry can: the process dies, the model hangs, the model raises.
Named in suites as ``tests/scale/suite_models.py:Crasher`` (a file model: no registration needed)."""
from __future__ import annotations

import os
import time

from bench_plugin_example.toy import ToyLinear


class Crasher(ToyLinear):
    """Ends its process without a word, as a segfault or a CUDA abort would."""

    runs_by_default = False

    def predict(self, samples):
        os._exit(3)


class Sleeper(ToyLinear):
    """Hangs (a deadlocked DataLoader, a stuck collective)."""

    runs_by_default = False

    def predict(self, samples):
        time.sleep(600)
        return super().predict(samples)


class Raiser(ToyLinear):
    """A bug in the model: an exception that is not a user error."""

    runs_by_default = False

    def predict(self, samples):
        raise ValueError("shape mismatch in the head")
