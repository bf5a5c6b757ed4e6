"""Small ``nn.Module`` wrappers that give ``bench throughput`` one forward call per model (imports torch: only
loaded from ``torch_module()``)."""
from __future__ import annotations

from typing import Any

import torch


class LastFlow(torch.nn.Module):
    """RAFT's forward with a fixed number of flow updates, returning only the final flow (what ``predict`` keeps)."""

    def __init__(self, raft: torch.nn.Module, updates: int) -> None:
        super().__init__()
        self.raft = raft
        self.updates = updates

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> Any:
        return self.raft(first, second, num_flow_updates=self.updates)[-1]
