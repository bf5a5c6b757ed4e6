"""Where in-repo models keep their committed weights, and how they are written and read back.

Weights are stored as plain state dicts of float16 tensors: half the bytes of float32, which keeps every file in
the repository small, and a format ``torch.load(weights_only=True)`` reads without unpickling any object.  The
network computes in float32; the committed numbers are measured with the float16-rounded weights, so what is
reported is what is shipped.
"""
from __future__ import annotations

from pathlib import Path

from adapters.base import load_state_dict
from harness.errors import BenchError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def default_weights(task: str, model: str) -> Path:
    """``adapters/weights/<task>_<model>.pt`` (the naming the other in-repo models use)."""
    return WEIGHTS_DIR / f"{task}_{model}.pt"


def save_compact(state: dict, path: Path) -> Path:
    """Save a state dict with floating tensors as float16 (integer buffers such as BatchNorm counters as they are)."""
    import torch

    compact = {key: value.detach().to("cpu", torch.float16) if value.is_floating_point() else value.detach().cpu()
               for key, value in state.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(compact, path)
    return path


def load_into(module, path: Path, trust_checkpoint: bool = False) -> None:
    """Load ``path`` into ``module`` (as float32), refusing a file made for another architecture in one line."""
    import torch

    state = load_state_dict(path, trust_checkpoint)
    reference = module.state_dict()
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise BenchError(f"checkpoint does not fit {type(module).__name__} ({detail})", path)
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(reference[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise BenchError(f"checkpoint entry {key!r} is {shape}, {type(module).__name__} expects "
                             f"{tuple(reference[key].shape)}", path)
    module.load_state_dict({key: value.to(reference[key].dtype) for key, value in state.items()})
