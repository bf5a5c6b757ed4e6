"""``bench throughput``: how fast is the network itself, per batch size, precision and memory layout?

Two modes.  ``module`` (when the adapter exposes ``torch_module()``) times the forward pass on
``example_input(batch)``: the number a deployment cares about, and the only one where ``--precision``
(autocast to fp16/bf16), ``--channels-last`` and ``--compile`` mean anything.  ``predict`` times the adapter's
``predict`` on real samples, preprocessing and decoding of outputs included.

Timing: ``warmup`` untimed calls (lazy initialisation, autotuning, compilation), then ``repeats`` calls timed one
by one - CUDA events around the call on a GPU (kernels are asynchronous: wall time would measure the launch),
``perf_counter`` on the CPU.  Latency is reported as p50/p90/p99 of those calls; images/s is batch / median.
Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU; on the CPU it is the process's resident-set
high-water mark (``getrusage``), which cannot be reset, so it includes everything loaded before.  A batch that
runs out of memory is halved until it fits, and the row records both sizes.

``torch.compile`` that cannot work here (no C++ compiler for inductor, no Triton, a model dynamo cannot trace)
does not end the measurement: the module is timed eagerly, a one-line note says why, and the row records
``compile=False`` with the reason in ``notes``.  Rows are keyed by the machine too
(``harness.publish.machine``), so ``throughput.csv`` holds every machine's numbers side by side and
``bench gate --throughput`` compares like with like.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.core.errors import BenchError
from harness.run.precision import PRECISIONS, autocast, autocast_predict

KEY_COLUMNS = ["task", "model", "mode", "device", "precision", "channels_last", "compile", "batch_size", "machine"]
COLUMNS = KEY_COLUMNS + [
    "effective_batch_size", "oom_backoff", "status", "images_per_s", "latency_p50_ms", "latency_p90_ms",
    "latency_p99_ms", "latency_mean_ms", "peak_memory_mb", "memory_measure", "parameters", "gflops_per_image",
    "repeats", "warmup", "device_name", "torch", "cuda", "cudnn", "model_fingerprint", "git_sha", "measured_utc",
    "notes", "cpu", "cores",
]


@dataclass
class ThroughputConfig:
    task: str
    model: str
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_backend: str = "inductor"
    device: str = "cpu"
    repeats: int = 20
    warmup: int = 3
    mode: str = "auto"  # auto | module | predict
    dataset: str | None = None
    data_root: Path | None = None
    split: str | None = None
    checkpoint: Path | None = None
    trust_checkpoint: bool = False
    leaderboards_dir: Path = Path("leaderboards")
    extra: dict[str, Any] = field(default_factory=dict)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def move(batch: Any, device: str, channels_last: bool) -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        batch = batch.to(device)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(move(item, device, channels_last) for item in batch)
    if isinstance(batch, dict):
        return {key: move(value, device, channels_last) for key, value in batch.items()}
    return batch


def call_module(module: Any, batch: Any) -> Any:
    if isinstance(batch, dict):
        return module(**batch)
    if isinstance(batch, tuple):
        return module(*batch)
    return module(batch)


def time_calls(run: Callable[[], Any], device: str, warmup: int, repeats: int) -> np.ndarray:
    """Milliseconds of ``repeats`` calls after ``warmup`` untimed ones."""
    import torch

    for _ in range(warmup):
        run()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize(device)
    times = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            run()
            times.append((time.perf_counter() - begin) * 1000.0)
    return np.asarray(times, dtype=np.float64)


def peak_memory(device: str) -> tuple[float, str]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "process max RSS"


def count_flops(module: Any, batch: Any) -> int | None:
    """FLOPs of one forward pass (a multiply-add counts 2), or None when the counter cannot trace the module."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            call_module(module, batch)
    except Exception:  # an exotic op the counter does not know must not cost the whole measurement
        return None
    return int(counter.get_total_flops())


def measure_throughput(config: ThroughputConfig, on_row: Callable[[dict[str, Any]], None] | None = None,
                       on_note: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per batch size, also upserted into ``<leaderboards_dir>/throughput.csv``; ``on_note`` hears
    one-line notes (e.g. torch.compile unavailable, measured without it)."""
    import torch

    from harness.run.bench_run import RunConfig, build_adapter, open_dataset, seed_everything
    from harness.tasks import get_task
    from harness.publish.machine import machine_fingerprint, machine_key
    from harness.publish.provenance import device_description, git_state, utc_now

    if config.precision not in PRECISIONS:
        raise BenchError(f"unknown precision {config.precision!r} (known: {', '.join(PRECISIONS)})")
    if not config.batch_sizes or min(config.batch_sizes) < 1:
        raise BenchError("batch sizes must be positive integers")
    if config.repeats < 1 or config.warmup < 0:
        raise BenchError("--repeats must be at least 1 and --warmup at least 0")
    task = get_task(config.task)
    adapter = build_adapter(config.model, task, RunConfig(task=config.task, checkpoint=config.checkpoint,
                                                          trust_checkpoint=config.trust_checkpoint, device=config.device))
    module = adapter.torch_module() if config.mode in ("auto", "module") else None
    if config.mode == "module" and module is None:
        raise BenchError(f"model {adapter.name!r} exposes no torch module; use --mode predict")
    mode = "module" if module is not None else "predict"
    if mode == "predict" and (config.channels_last or config.compile):
        raise BenchError(f"--channels-last/--compile time the torch module, which model {adapter.name!r} "
                         "does not expose (predict mode runs the adapter as it is, under --precision's autocast)")
    if mode == "predict" and PRECISIONS[config.precision] is not None:
        # an instance attribute shadows the method: wrappers calling the adapter's predict get autocast too
        adapter.predict = autocast_predict(  # type: ignore[method-assign]
            adapter.predict, adapter.name, config.precision, adapter.device)
    seed_everything(0)
    machine = machine_fingerprint(adapter.device)
    common = {
        "machine": machine_key(machine), "cpu": machine["cpu"], "cores": machine["cores"],
        "task": task.name, "model": adapter.name, "mode": mode, "device": adapter.device, "precision": config.precision,
        "channels_last": bool(config.channels_last), "compile": bool(config.compile), "repeats": config.repeats,
        "warmup": config.warmup, "device_name": device_description(adapter.device), "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "cudnn": str(torch.backends.cudnn.version()) if adapter.device.startswith("cuda") else "",
        "model_fingerprint": adapter.fingerprint(), "git_sha": (git_state().get("git_sha") or "")[:10],
    }
    runner: ModuleRunner | None = None
    parameters: int | None
    flops: int | None
    if mode == "module":
        runner = ModuleRunner(module, adapter, config)
        if runner.note and on_note is not None:
            on_note(runner.note)
        run_for, parameters, flops = runner.run_for, runner.parameters, runner.flops
    else:
        run_for, parameters, flops = _predict_runner(adapter, open_dataset(task, config.dataset, config.data_root, config.split)), adapter.info().parameters, None
    rows = []
    for requested in config.batch_sizes:
        row = {**common, "batch_size": requested, "parameters": parameters,
               "gflops_per_image": None if flops is None else flops / 1e9}
        try:
            row.update(_measure_with_backoff(run_for, requested, adapter.device, config))
        except Exception as exc:
            if runner is None or not runner.compiled or not is_compile_failure(exc):
                raise
            # torch.compile needs a working C++ toolchain (inductor on the CPU) or Triton (on a GPU), and some
            # models break it: measure without it, say so in one line and in the row, never pass it off as compiled
            note = runner.fall_back(exc)
            if on_note is not None:
                on_note(note)
            row.update(_measure_with_backoff(run_for, requested, adapter.device, config))
        if runner is not None and runner.note:
            row.update(compile=runner.compiled, notes=runner.note)
        row["measured_utc"] = utc_now()
        rows.append(row)
        if on_row is not None:
            on_row(row)
    update_throughput_csv(config.leaderboards_dir / "throughput.csv", rows)
    return rows


def is_compile_failure(exc: BaseException) -> bool:
    """An error raised by torch.compile's machinery (dynamo tracing, inductor code generation, the C++ build)."""
    import torch

    compile_errors: tuple[type, ...] = (torch._dynamo.exc.TorchDynamoException,)
    module = type(exc).__module__
    return isinstance(exc, compile_errors) or module.startswith(("torch._dynamo", "torch._inductor"))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class ModuleRunner:
    """Times ``module`` (the adapter's ``torch_module()``) on ``example_input`` under the config's precision,
    memory format and compilation; ``fall_back`` drops compilation when it cannot work here."""

    def __init__(self, module: Any, adapter: Any, config: ThroughputConfig) -> None:
        import torch

        self.adapter, self.config, self.device = adapter, config, adapter.device
        self.module = module.to(self.device).eval()
        self.parameters = int(sum(p.numel() for p in self.module.parameters()))
        self.flops = count_flops(self.module, move(adapter.example_input(1), self.device, False))
        if config.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.runnable = self.module
        self.compiled = False
        self.note = ""
        if config.compile:
            try:
                self.runnable = torch.compile(self.module, backend=config.compile_backend)
                self.compiled = True
            except Exception as exc:  # e.g. an unknown backend; a missing compiler shows at the first call
                self.note = f"torch.compile unavailable ({first_line(exc)}): measured without it"

    def fall_back(self, exc: BaseException) -> str:
        import torch

        torch._dynamo.reset()
        self.runnable, self.compiled = self.module, False
        cause = getattr(exc, "inner_exception", None) or exc.__cause__ or exc  # dynamo wraps the backend's error
        self.note = f"torch.compile failed ({type(cause).__name__}: {first_line(cause)}): measured without it"
        return self.note

    def run_for(self, batch_size: int) -> Callable[[], Any]:
        import torch

        batch = move(self.adapter.example_input(batch_size), self.device, self.config.channels_last)

        def run() -> Any:
            with torch.inference_mode(), autocast(self.config.precision, self.device):
                return call_module(self.runnable, batch)  # self.runnable: eager again after a fall-back

        return run


def _predict_runner(adapter: Any, dataset: Any):
    from harness.run.latency import synchronize

    if len(dataset) == 0:
        raise BenchError(f"dataset {dataset.info.name!r} is empty; predict mode needs samples")

    def run_for(batch_size: int) -> Callable[[], Any]:
        samples = [dataset[i % len(dataset)] for i in range(batch_size)]
        for sample in samples:
            sample.preload()

        def run() -> Any:
            out = adapter.predict(samples)
            synchronize(adapter.device)
            return out

        return run

    return run_for


def _measure_with_backoff(run_for: Callable[[int], Callable[[], Any]], requested: int, device: str,
                          config: ThroughputConfig) -> dict[str, Any]:
    batch = requested
    while True:
        try:
            if device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            milliseconds = time_calls(run_for(batch), device, config.warmup, config.repeats)
            break
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if batch == 1:
                return {"effective_batch_size": 0, "oom_backoff": True, "status": "out of memory at batch size 1"}
            batch //= 2
    memory, measure = peak_memory(device)
    median = float(np.median(milliseconds))
    return {
        "effective_batch_size": batch, "oom_backoff": batch != requested,
        "status": "ok" if batch == requested else f"out of memory at {requested}, measured at {batch}",
        "images_per_s": batch / (median / 1000.0) if median > 0 else float("inf"),
        "latency_p50_ms": median,
        "latency_p90_ms": float(np.percentile(milliseconds, 90)),
        "latency_p99_ms": float(np.percentile(milliseconds, 99)),
        "latency_mean_ms": float(milliseconds.mean()),
        "peak_memory_mb": memory, "memory_measure": measure,
    }


def update_throughput_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Insert or replace rows by (task, model, mode, device, precision, channels_last, compile, batch_size,
    machine): a row measured on another machine is kept beside this one's."""
    import pandas as pd

    from harness.io.jsonio import atomic_write_text

    from harness.io.locks import locked
    from harness.io.validation.tables import read_csv

    with locked(path):  # read-modify-write: concurrent `bench throughput` runs keep each other's rows
        _update_throughput_csv(path, rows, read_csv)


def _update_throughput_csv(path: Path, rows: list[dict[str, Any]], read_csv: Any) -> None:
    import pandas as pd

    from harness.io.jsonio import atomic_write_text

    new = pd.DataFrame(rows).reindex(columns=COLUMNS)
    if path.is_file():
        old = read_csv(path, required=KEY_COLUMNS[:-1], numeric=("batch_size", "images_per_s"),
                       dtype={"git_sha": str, "cuda": str, "cudnn": str, "machine": str})
        old = old.reindex(columns=COLUMNS)
        keys = lambda frame: frame[KEY_COLUMNS].astype(str).agg("|".join, axis=1)  # noqa: E731
        table = pd.concat([old[~keys(old).isin(set(keys(new)))], new], ignore_index=True)
    else:
        table = new
    table = table.sort_values(["task", "model", "device", "precision", "mode", "channels_last", "compile", "batch_size",
                               "machine"],
                              kind="mergesort")
    atomic_write_text(path, table.to_csv(index=False))
