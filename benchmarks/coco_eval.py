"""Whole-process race of COCO evaluators on the same JSON files: bench eval against the engines on PyPI.

Every evaluator runs as its own process, started from a clean interpreter and given the two JSON files on disk
(ground truth, results), so a time covers everything a user waits for: interpreter start, imports, JSON
parsing, validation, evaluation, accumulation and the summary.  Contestants:

* ``bench``: ``python -m harness.cli eval --task ... --gt ... --pred ... --json OUT`` (exactly ``bench eval``);
* ``hotcoco``, ``ultrafast`` (ultrafast-pycocotools), ``faster-coco-eval``, ``pycocotools``: their
  pycocotools-style API (``COCO(gt)``, ``loadRes(pred)``, evaluate / accumulate / summarize);
* ``vernier``: its native file-bytes entry point (``vernier.instance.evaluate_*_summary``, strict parity).

Each contestant first runs once untimed (file cache, bytecode caches: bench runs from its source tree, so
``PYTHONDONTWRITEBYTECODE`` is dropped for the children, as an installed package has its bytecode).  Rounds
are interleaved (round r runs every contestant once, in an order rotated by r) so that a change in
machine load hits all of them alike; the table gives the median wall and CPU (user + system) seconds of the
rounds, the median peak RSS (``wait4`` accounting of the child), and the largest |stats difference| against
pycocotools.  pycocotools is the reference and, being slow, runs ``--reference-rounds`` times (default 1).
The load average is printed before and after each dataset.  Peers come from the ``benchmark`` extra:
``pip install -c constraints.txt -e ".[benchmark]"``; a peer that is not installed is skipped.

Data are synthetic, COCO-like and seeded (``harness.metrics.coco.synthetic``), written once to ``--cache-dir``:

    bbox       5k / 20k images, 80 categories, ~7.3 GT and 100 results per image (COCO val-like: 36k GT, 490k results)
    segm       5k / 20k images, 80 categories, polygon GT (crowds as RLE), 50 RLE results per image
    keypoints  5k / 20k images, ~3 people per image, up to 25 results per image
    o365       80k images, 365 categories, ~15 GT and 15 results per image (~1.2M box results)

    python benchmarks/coco_eval.py                                 # everything, 5 rounds
    python benchmarks/coco_eval.py --sets bbox-5k,keypoints-5k --rounds 3 --only bench,hotcoco,ultrafast
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 1
DEFAULT_CACHE = Path(os.environ.get("BENCH_BENCHMARK_CACHE", Path.home() / ".cache" / "bench" / "coco_eval"))


# ------------------------------------------------------------------------------------------------ data sets
@dataclass(frozen=True)
class DataSet:
    name: str
    iou_type: str
    images: int
    categories: int = 80
    gt_per_image: float = 7.3
    dets_per_image: int = 100

    @property
    def task(self) -> str:
        return {"bbox": "detection", "segm": "instance", "keypoints": "keypoints"}[self.iou_type]


DATASETS = {
    d.name: d
    for d in (
        DataSet("bbox-5k", "bbox", 5000),
        DataSet("segm-5k", "segm", 5000, dets_per_image=50),
        DataSet("keypoints-5k", "keypoints", 5000, categories=1, dets_per_image=20),
        DataSet("bbox-20k", "bbox", 20000),
        DataSet("segm-20k", "segm", 20000, dets_per_image=50),
        DataSet("keypoints-20k", "keypoints", 20000, categories=1, dets_per_image=20),
        DataSet("o365", "bbox", 80000, categories=365, gt_per_image=15.0, dets_per_image=15),
    )
}


def materialise(data: DataSet, cache: Path, seed: int) -> tuple[Path, Path]:
    """The data set's two files, generated from ``seed`` on first use (atomic, so an interrupted run leaves none)."""
    folder = cache / f"{data.name}-seed{seed}-v{GENERATOR_VERSION}"
    gt_path, pred_path = folder / "gt.json", folder / "results.json"
    if not (gt_path.is_file() and pred_path.is_file()):
        # in a child process: Linux counts the parent's resident memory at fork into a child's peak RSS, so the
        # racing parent must stay small (stdlib only) for the RSS column to mean anything
        subprocess.run([sys.executable, __file__, "--generate", data.name, "--seed", str(seed), "--cache-dir",
                        str(cache)], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return gt_path, pred_path


def generate(data: DataSet, folder: Path, seed: int) -> None:
    gt_path, pred_path = folder / "gt.json", folder / "results.json"
    sys.path.insert(0, str(ROOT))
    from harness.metrics.coco import synthetic

    print(f"generating {data.name} in {folder} ...", flush=True)
    started = time.perf_counter()
    if data.iou_type == "bbox":
        gt, results = synthetic.synthetic_boxes(seed, num_images=data.images, num_categories=data.categories,
                                                gt_per_image=data.gt_per_image, dets_per_image=data.dets_per_image)
    elif data.iou_type == "segm":
        gt, results = synthetic.synthetic_masks(seed, num_images=data.images, num_categories=data.categories,
                                                dets_per_image=data.dets_per_image)
    else:
        gt, results = synthetic.synthetic_keypoints(seed, num_images=data.images, dets_per_image=data.dets_per_image)
    folder.mkdir(parents=True, exist_ok=True)
    for path, value in ((gt_path, gt), (pred_path, results)):
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(value, handle, separators=(",", ":"))
        os.replace(tmp, path)
    print(f"  {len(gt['images'])} images, {len(gt['annotations'])} GT, {len(results)} results "
          f"({time.perf_counter() - started:.0f} s)", flush=True)


# ------------------------------------------------------------------------------------------------ contestants
# Each peer runs as ``python -c SCRIPT iou_type gt pred out``: the script imports only the peer itself and
# writes the summary stats as JSON to ``out``; the peer's own printing goes to /dev/null.
_PYCOCO_STYLE = """
import json, sys
{imports}
iou, gt_path, pred_path, out = sys.argv[1:5]
gt = COCO(gt_path)
dt = gt.{load_res}(pred_path)
ev = Eval(gt, dt, iou{extra})
if iou == "keypoints":
    ev.params.maxDets = [20]
ev.evaluate(); ev.accumulate(); ev.summarize()
json.dump([float(s) for s in ev.stats], open(out, "w"))
"""

PEER_SCRIPTS = {
    "pycocotools": _PYCOCO_STYLE.format(
        imports="from pycocotools.coco import COCO\nfrom pycocotools.cocoeval import COCOeval as Eval",
        load_res="loadRes", extra=""),
    "faster-coco-eval": _PYCOCO_STYLE.format(
        imports="from faster_coco_eval import COCO, COCOeval_faster as Eval", load_res="loadRes",
        extra=", print_function=lambda *a, **k: None"),
    "ultrafast": _PYCOCO_STYLE.format(
        imports="from ultrafast_pycocotools import COCO, COCOeval as Eval", load_res="loadRes", extra=""),
    "hotcoco": _PYCOCO_STYLE.format(imports="from hotcoco import COCO, COCOeval as Eval", load_res="load_res",
                                    extra=""),
    "vernier": """
import json, sys
from vernier import instance
iou, gt_path, pred_path, out = sys.argv[1:5]
gt, dt = open(gt_path, "rb").read(), open(pred_path, "rb").read()
if iou == "keypoints":
    sigmas = [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
    cats = [c["id"] for c in json.loads(gt)["categories"]]
    summary = instance.evaluate_keypoints_summary(gt, dt, parity_mode="strict", max_dets=[20], use_cats=True,
                                                  sigmas={c: [s / 10.0 for s in sigmas] for c in cats})
else:
    run = instance.evaluate_bbox_summary if iou == "bbox" else instance.evaluate_segm_summary
    summary = run(gt, dt, parity_mode="strict", max_dets=[1, 10, 100], use_cats=True)
json.dump([float(s) for s in summary.stats], open(out, "w"))
""",
}
PEER_MODULES = {"pycocotools": "pycocotools", "faster-coco-eval": "faster_coco_eval",
                "ultrafast": "ultrafast_pycocotools", "hotcoco": "hotcoco", "vernier": "vernier"}
CONTESTANTS = ("bench", "hotcoco", "ultrafast", "vernier", "faster-coco-eval", "pycocotools")


def command(name: str, data: DataSet, gt: Path, pred: Path, out: Path) -> list[str]:
    if name == "bench":
        return [sys.executable, "-m", "harness.cli", "eval", "--task", data.task, "--gt", str(gt), "--pred",
                str(pred), "--json", str(out)]
    return [sys.executable, "-c", PEER_SCRIPTS[name], data.iou_type, str(gt), str(pred), str(out)]


def read_stats(name: str, out: Path) -> list[float] | None:
    if not out.is_file():
        return None
    value = json.loads(out.read_text())
    if name == "bench":
        return [float("nan") if v is None else float(v) for v in value["metrics"].values()]
    return [float(v) for v in value]


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    stats: list[float] | None
    status: int
    error: str = ""


#: address-space cap per contestant (GiB); a run beyond it fails instead of driving a shared machine into the
#: kernel's OOM killer (faster-coco-eval needs more than 24 GiB on the Objects365-sized set)
MEMORY_LIMIT_GIB = 16.0


def _limit_memory() -> None:
    import resource

    limit = int(MEMORY_LIMIT_GIB * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_once(name: str, data: DataSet, gt: Path, pred: Path, timeout: float) -> Run:
    """One whole process: wall from fork to reap, CPU and peak RSS from the kernel's accounting of that child."""
    with tempfile.TemporaryDirectory(prefix="coco-race-") as tmp:
        out = Path(tmp) / "stats.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bench runs from source: let it cache bytecode like an install
        started = time.perf_counter()
        with open(Path(tmp) / "stderr", "w+") as err:
            proc = subprocess.Popen(command(name, data, gt, pred, out), stdout=subprocess.DEVNULL, stderr=err,
                                    env=env, cwd=tmp, preexec_fn=_limit_memory)
            deadline = started + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.005)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            message = err.read().strip().splitlines()[-1:] if proc.returncode else []
            if proc.returncode and not message:
                message = [f"exit status {proc.returncode}"]
        stats = read_stats(name, out) if proc.returncode == 0 else None
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stats, proc.returncode,
                   message[0] if message else "")


def installed(name: str) -> bool:
    if name == "bench":
        return True
    from importlib.util import find_spec

    return find_spec(PEER_MODULES[name]) is not None


def race(data: DataSet, gt: Path, pred: Path, names: list[str], rounds: int, reference_rounds: int,
         timeout: float, warmup: bool = True) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for name in names:  # one untimed run each (not the slow reference): file cache and bytecode caches warm
        if name != "pycocotools" and warmup:
            run = run_once(name, data, gt, pred, timeout)
            print(f"  warm-up {name:<17} wall {run.wall:7.2f} s" + (f"  FAILED: {run.error}" if run.status else ""),
                  flush=True)
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            if name == "pycocotools" and len(runs[name]) >= reference_rounds:
                continue
            if runs[name] and runs[name][-1].status != 0:
                continue  # failed once: do not burn time on it again
            run = run_once(name, data, gt, pred, timeout)
            runs[name].append(run)
            print(f"  round {r + 1} {name:<17} wall {run.wall:7.2f} s  cpu {run.cpu:7.2f} s  "
                  f"rss {run.rss_mib:7.0f} MiB" + (f"  FAILED ({run.status}): {run.error}" if run.status else ""),
                  flush=True)
    return runs


def report(data: DataSet, runs: dict[str, list[Run]], reference_name: str = "pycocotools") -> list[str]:
    reference = next((r.stats for r in runs.get(reference_name, []) if r.stats is not None), None)
    ok = [r for r in runs.get("bench", []) if r.status == 0]
    bench_wall = statistics.median(r.wall for r in ok) if ok else float("nan")
    lines = [f"| {data.name} | evaluator | wall s | CPU s | peak RSS MiB | x bench wall "
             f"| max abs stats diff vs {reference_name} | rounds |",
             "|---|---|---|---|---|---|---|---|"]
    for name, items in runs.items():
        good = [r for r in items if r.status == 0]
        if not good:
            error = items[0].error if items else "not run"
            lines.append(f"| {data.name} | {name} | failed: {error[:80]} | | | | | {len(items)} |")
            continue
        wall = statistics.median(r.wall for r in good)
        cpu = statistics.median(r.cpu for r in good)
        rss = statistics.median(r.rss_mib for r in good)
        diff = "n/a"
        if reference is not None and good[0].stats is not None:
            if len(reference) == len(good[0].stats):
                diff = f"{max(abs(a - b) for a, b in zip(good[0].stats, reference)):.1e}"
            else:
                diff = f"{len(good[0].stats)} stats vs {len(reference)}"
        lines.append(f"| {data.name} | {name} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {wall / bench_wall:.2f} | "
                     f"{diff} | {len(good)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    import argparse

    global MEMORY_LIMIT_GIB

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(DATASETS), help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--only", default=",".join(CONTESTANTS), help="contestants, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reference-rounds", type=int, default=1, help="timed rounds of pycocotools")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per process")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first run of each contestant")
    parser.add_argument("--reference", default="pycocotools",
                        help="whose stats the others are compared with (pycocotools needs ~8 GiB at 20k images)")
    parser.add_argument("--memory-limit-gib", type=float, default=16.0, help="address-space cap per run")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    parser.add_argument("--generate", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        generate(DATASETS[args.generate], args.cache_dir / f"{args.generate}-seed{args.seed}-v{GENERATOR_VERSION}",
                 args.seed)
        return

    MEMORY_LIMIT_GIB = args.memory_limit_gib
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in CONTESTANTS]
    if unknown:
        parser.error(f"unknown contestants {unknown}; known: {', '.join(CONTESTANTS)}")
    missing = [n for n in names if not installed(n)]
    for name in missing:
        print(f"skipping {name}: not installed (pip install -e '.[benchmark]')")
    names = [n for n in names if n not in missing]
    table: list[str] = []
    for set_name in [s for s in args.sets.split(",") if s]:
        data = DATASETS[set_name]
        gt, pred = materialise(data, args.cache_dir, args.seed)
        load = os.getloadavg()
        print(f"\n{data.name}: {gt.stat().st_size / 2**20:.0f} MiB GT, {pred.stat().st_size / 2**20:.0f} MiB "
              f"results; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores", flush=True)
        runs = race(data, gt, pred, names, args.rounds, args.reference_rounds, args.timeout, not args.no_warmup)
        after = os.getloadavg()
        lines = report(data, runs, args.reference)
        table += lines + [f"load average {load[0]:.1f} before, {after[0]:.1f} after; {os.cpu_count()} cores", ""]
        print("\n".join(lines), flush=True)
    print("\n" + "\n".join(table))
    if args.markdown is not None:
        args.markdown.write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
