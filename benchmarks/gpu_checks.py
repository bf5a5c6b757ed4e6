"""The GPU paths of bench, checked on a real CUDA machine (no GPU is lent to CI): run through
``benchmarks/gpu_check.sh``, which calls this file once it knows a CUDA device is there.

Each check prints one verdict line, ``PASS|FAIL|SKIP <check>: <detail>``; the script exits 1 when any failed.
Checks: CUDA-event timing (bench throughput's clock) agrees with a synchronised wall clock; pinned-memory,
non-blocking host-to-device copies arrive intact and are not slower than pageable ones; reserved vs allocated
memory accounting and release; out-of-memory back-off on a real CUDA OOM (bench throughput's and the suite
child's detectors); fp16/bf16 (+ channels_last) ``bench throughput`` rows on the GPU; one ``bench run`` on
CUDA; and, with two or more devices, ``torchrun --nproc_per_node 2`` over nccl, whose result must equal the
single-process run's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

RESULTS: list[tuple[str, str, str]] = []


def check(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Run the check now; its return value is the PASS detail, ``SkipCheck`` a SKIP, anything else a FAIL."""

    def run(function: Callable[[], str]) -> Callable[[], str]:
        try:
            verdict, detail = "PASS", function()
        except SkipCheck as exc:
            verdict, detail = "SKIP", str(exc)
        except Exception as exc:  # every failure is a verdict line, and the other checks still run
            verdict, detail = "FAIL", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            if os.environ.get("GPU_CHECK_VERBOSE"):
                traceback.print_exc()
        RESULTS.append((verdict, name, detail))
        print(f"{verdict} {name}: {detail}", flush=True)
        return function

    return run


class SkipCheck(Exception):
    pass


DEVICE = "cuda:0"
print(f"device: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}", flush=True)


@check("cuda events timing")
def _events() -> str:
    from harness.run.throughput_benchmark import time_calls

    a = torch.randn(4096, 4096, device=DEVICE)
    run = lambda: a @ a  # noqa: E731
    events = time_calls(run, DEVICE, warmup=3, repeats=10)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        run()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - start) * 1000 / 10
    median = float(sorted(events)[len(events) // 2])
    if not 0 < median < 10 * wall or median < wall / 10:
        raise AssertionError(f"events say {median:.3f} ms per matmul, the synchronised wall clock {wall:.3f} ms")
    return f"4096^2 matmul: events {median:.3f} ms, synchronised wall clock {wall:.3f} ms"


@check("pinned non-blocking transfers")
def _pinned() -> str:
    host = torch.randint(0, 255, (64, 3, 512, 512), dtype=torch.uint8)
    pinned = host.pin_memory()
    if not pinned.is_pinned():
        raise AssertionError("pin_memory() returned pageable memory")

    def copy(source: torch.Tensor, non_blocking: bool) -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(5):
            out = source.to(DEVICE, non_blocking=non_blocking)
        torch.cuda.synchronize()
        if not torch.equal(out.cpu(), host):
            raise AssertionError("a non-blocking copy arrived corrupted")
        return (time.perf_counter() - start) / 5

    pageable, fast = copy(host, False), copy(pinned, True)
    gb = host.numel() / 1e9
    if fast > pageable * 1.5:
        raise AssertionError(f"pinned copies slower than pageable ({gb / fast:.1f} vs {gb / pageable:.1f} GB/s)")
    return f"{gb * 1000:.0f} MB uint8: pinned {gb / fast:.1f} GB/s, pageable {gb / pageable:.1f} GB/s"


@check("reserved memory accounting")
def _reserved() -> str:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(DEVICE)
    block = torch.empty(256 * 2**20, dtype=torch.uint8, device=DEVICE)
    allocated, reserved = torch.cuda.memory_allocated(DEVICE), torch.cuda.memory_reserved(DEVICE)
    if not (allocated >= 256 * 2**20 and reserved >= allocated):
        raise AssertionError(f"allocated {allocated} B, reserved {reserved} B after a 256 MiB tensor")
    del block
    kept = torch.cuda.memory_reserved(DEVICE)
    torch.cuda.empty_cache()
    released = torch.cuda.memory_reserved(DEVICE)
    peak = torch.cuda.max_memory_reserved(DEVICE)
    if released >= kept or peak < reserved:
        raise AssertionError(f"reserved {kept} B before empty_cache, {released} B after; peak {peak} B")
    return (f"256 MiB tensor: allocated {allocated / 2**20:.0f} MiB, reserved {reserved / 2**20:.0f} MiB, "
            f"after empty_cache {released / 2**20:.0f} MiB, peak reserved {peak / 2**20:.0f} MiB")


@check("out-of-memory back-off")
def _oom() -> str:
    from harness.run.suite_entry import is_out_of_memory
    from harness.run.throughput_benchmark import ThroughputConfig, _measure_with_backoff

    free, _ = torch.cuda.mem_get_info(DEVICE)
    per_item = int(free * 0.4)  # batch 4 and 2 need 160 % and 80 % of what is free: 4 fails, 2 fits

    def run_for(batch: int) -> Callable[[], object]:
        return lambda: torch.empty(batch * per_item, dtype=torch.uint8, device=DEVICE)

    try:
        run_for(4)()
        raise AssertionError("allocating 160 % of free memory did not fail")
    except torch.OutOfMemoryError as exc:
        if not is_out_of_memory(exc):
            raise AssertionError("the suite's OOM detector does not recognise a real CUDA OOM") from None
    torch.cuda.empty_cache()
    row = _measure_with_backoff(run_for, 4, DEVICE, ThroughputConfig(task="-", model="-", repeats=2, warmup=1))
    if row["effective_batch_size"] != 2 or not row["oom_backoff"]:
        raise AssertionError(f"expected batch 4 to back off to 2, got {row['status']}")
    return f"{row['status']}; peak {row['peak_memory_mb']:.0f} MiB ({row['memory_measure']})"


def throughput(precision: str, channels_last: bool) -> str:
    from harness.run.throughput_benchmark import ThroughputConfig, measure_throughput

    with tempfile.TemporaryDirectory() as folder:
        rows = measure_throughput(ThroughputConfig(
            task="semantic", model="unet", batch_sizes=(1, 16), precision=precision, channels_last=channels_last,
            device=DEVICE, repeats=10, warmup=3, leaderboards_dir=Path(folder)))
    bad = [row for row in rows if row["status"] != "ok"]
    if bad:
        raise AssertionError(f"batch {bad[0]['batch_size']}: {bad[0]['status']}")
    return ", ".join(f"batch {r['batch_size']}: {r['images_per_s']:.0f} img/s, peak {r['peak_memory_mb']:.0f} MiB"
                     for r in rows)


@check("fp32 throughput")
def _fp32() -> str:
    return throughput("fp32", False)


@check("fp16 throughput (channels_last)")
def _fp16() -> str:
    return throughput("fp16", True)


@check("bf16 throughput (channels_last)")
def _bf16() -> str:
    if not torch.cuda.is_bf16_supported():
        raise SkipCheck("this GPU has no bf16")
    return throughput("bf16", True)


def bench_run(folder: Path, launcher: list[str], *extra: str) -> dict:
    command = [*launcher, "run", "--task", "keypoints", "--model", "heatmap", "--limit", "64", "--device", "cuda",
               "--reports-dir", str(folder / "r"), "--leaderboards-dir", str(folder / "lb"), "--no-cache",
               "--gallery", "0", "--bootstrap", "0", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=1800)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise AssertionError(f"{' '.join(command[:4])}... exit {done.returncode}: {lines[-1] if lines else ''}")
    [metrics] = sorted((folder / "r").glob("*/metrics.json"))
    return json.loads(metrics.read_text())


@check("bench run on cuda")
def _run() -> str:
    with tempfile.TemporaryDirectory() as folder:
        record = bench_run(Path(folder), [sys.executable, "-m", "harness.cli"])
    return f"keypoints/heatmap, 64 samples: AP {record['metrics']['AP']:.4f}, device {record['provenance']['device']}"


@check("torchrun nccl, 2 processes")
def _torchrun() -> str:
    if torch.cuda.device_count() < 2:
        raise SkipCheck(f"{torch.cuda.device_count()} CUDA device(s); needs 2")
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        single = bench_run(Path(one), [sys.executable, "-m", "harness.cli"])
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "harness.cli"]
        double = bench_run(Path(two), launcher)
    if double["provenance"].get("world_size") != 2:
        raise AssertionError(f"world_size {double['provenance'].get('world_size')}, expected 2")
    differ = {k: (single["metrics"][k], v) for k, v in double["metrics"].items() if single["metrics"].get(k) != v}
    if differ:
        raise AssertionError(f"2 processes score differently from 1: {differ}")
    return f"world_size 2 over nccl, metrics equal to one process (AP {double['metrics']['AP']:.4f})"


failed = sum(verdict == "FAIL" for verdict, _, _ in RESULTS)
print(f"verdict: {sum(v == 'PASS' for v, _, _ in RESULTS)} passed, {failed} failed, "
      f"{sum(v == 'SKIP' for v, _, _ in RESULTS)} skipped", flush=True)
sys.exit(1 if failed else 0)
