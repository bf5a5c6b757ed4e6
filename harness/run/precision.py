"""``--precision fp32|fp16|bf16``: run a model's forward passes under ``torch.autocast``, as a recorded run
condition.

A model run in reduced precision is a different measurement from the fp32 one (scores move, so does speed), so
``bench run --precision bf16`` renames the model ``<name>+bf16`` (its own leaderboard row, gate key and run
id, as ``+flip`` does), adds ``precision`` to its options (its fingerprint, hence its prediction-cache entries,
differ from fp32's) and records ``provenance.precision``.  fp32 leaves everything as it was.

Autocast is thread-local and wraps the adapter's ``predict`` (an instance attribute, so wrappers that call the
inner adapter's ``predict`` see it too): pre- and post-processing outside autocast-eligible ops stay fp32.
"""
from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable

from harness.core.errors import BenchError

#: precision name -> torch dtype name (None: no autocast)
PRECISIONS: dict[str, str | None] = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise BenchError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")


def autocast(precision: str, device: str) -> AbstractContextManager[Any]:
    """``torch.autocast`` to the precision's dtype on ``device``'s type; a no-op for fp32."""
    check_precision(precision)
    dtype = PRECISIONS[precision]
    if dtype is None:
        return nullcontext()
    import torch

    return torch.autocast(device.split(":")[0], dtype=getattr(torch, dtype))


def autocast_predict(predict: Callable[..., Any], name: str, precision: str, device: str) -> Callable[..., Any]:
    """``predict`` run under autocast; a model whose outputs reach numpy in a dtype numpy lacks (bfloat16) is
    refused in one line instead of a traceback from inside the adapter."""

    @functools.wraps(predict)
    def run(samples: Any) -> Any:
        try:
            with autocast(precision, device):
                return predict(samples)
        except TypeError as exc:
            if "BFloat16" not in str(exc):
                raise
            raise BenchError(f"model {name!r} cannot run under --precision {precision}: its adapter hands "
                             f"bfloat16 tensors to numpy ({str(exc).splitlines()[0]}); try fp16") from None

    return run


def with_precision(adapters: list[Any], precision: str) -> list[Any]:
    """The adapters switched to ``precision`` and renamed ``<name>+<precision>`` (fp32: unchanged)."""
    check_precision(precision)
    if PRECISIONS[precision] is None:
        return adapters
    for adapter in adapters:
        adapter.options = {**adapter.options, "precision": precision}
        adapter.predict = autocast_predict(adapter.predict, adapter.name, precision, adapter.device)
        adapter.name = f"{adapter.name}+{precision}"
    return adapters
