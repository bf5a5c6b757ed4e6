"""One suite entry in its own process: ``python -m harness.run.suite_entry SPEC.json RESULT.json``.

The suite (``harness.run.suite``) writes the entry's ``RunConfig`` and the modules that registered its models
into SPEC.json and starts this module in a fresh interpreter, so a crash (segfault, ``os._exit``, a leaked
CUDA context) or a hang ends this process only.  Out of memory (``torch.OutOfMemoryError``, CUDA's "out of
memory" ``RuntimeError``, ``MemoryError``) is retried here at half the batch size, down to 1, and every attempt
is recorded.  RESULT.json holds the status, the error's first line, the attempts and the written records
(metrics.json contents, as ``run_models`` returns them); its absence tells the suite the process died.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from harness.core.errors import BenchError


def config_to_json(config: Any) -> dict[str, Any]:
    """A ``RunConfig`` as JSON values (paths as strings, tuples as lists)."""
    out: dict[str, Any] = {}
    for item in fields(config):
        value = getattr(config, item.name)
        out[item.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
    return out


def config_from_json(data: dict[str, Any]) -> Any:
    from harness.run.bench_run import RunConfig

    values: dict[str, Any] = {}
    for item in fields(RunConfig):
        if item.name not in data:
            continue
        value, kind = data[item.name], str(item.type)
        if value is not None and "Path" in kind:
            value = Path(value)
        elif value is not None and kind.startswith("tuple"):
            value = tuple(value)
        values[item.name] = value
    return RunConfig(**values)


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OOM error, CUDA's "out of memory" RuntimeError, or the host running out (MemoryError)."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


def run_entry(config: Any) -> dict[str, Any]:
    """``run_models`` with out-of-memory back-off: the batch is halved until it fits or is 1."""
    from harness.run.bench_run import run_models

    attempts: list[dict[str, Any]] = []
    batch = config.batch_size
    while True:
        try:
            records = run_models(replace(config, batch_size=batch))
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            attempts.append({"batch_size": batch, "error": first_line(exc)})
            if batch == 1:
                return {"status": "failed", "error": f"out of memory at batch size 1 ({first_line(exc)})",
                        "attempts": attempts, "batch_size": batch, "records": []}
            batch //= 2
            _release_cuda_memory()
            continue
        attempts.append({"batch_size": batch, "error": None})
        return {"status": "ok", "error": None, "attempts": attempts, "batch_size": batch, "records": records}


def _release_cuda_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def preload(modules: list[str]) -> None:
    """Import the modules that registered the entry's models in the suite's process (plugins registered on
    import, e.g. by a test); a module this interpreter cannot find is left to the registry's own lookup."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a dotted name whose parent is gone, a module made from a file
            found = None
        if found is not None:
            importlib.import_module(name)


def main(argv: list[str]) -> int:
    from harness.io.jsonio import atomic_write_json, read_json

    spec_path, result_path = Path(argv[0]), Path(argv[1])
    spec = read_json(spec_path)
    try:
        preload(list(spec.get("preload") or []))
        result = run_entry(config_from_json(spec["config"]))
    except BenchError as exc:
        result = {"status": "failed", "error": str(exc).splitlines()[0], "attempts": [], "records": []}
    except Exception as exc:  # a bug or a crash of the model: the suite reports it and goes on
        traceback.print_exc()
        result = {"status": "failed", "error": first_line(exc), "attempts": [], "records": []}
    atomic_write_json(result_path, result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
