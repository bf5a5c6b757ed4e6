"""The run loop's data stage and clock (issue 15): workers keep sample order and skip cached samples, each
batch's stages are booked apart with synchronisation at the clock's edges only (an injected clock and a fake
synchronise stand in for CUDA), warm-up waits for repeating input shapes, and a run with no timed batch after
its warm-up publishes no images/s."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from harness.cli.console import images_per_s
from harness.core.adapter import Adapter, AdapterInfo
from harness.core.dataset import Dataset, DatasetInfo
from harness.core.errors import BenchError, DataError
from harness.core.structures import Sample, SemanticPrediction, SemanticTarget
from harness.run.latency import HostTimeline, LatencyRecorder, StageClock, describe_stages, warmup_count
from harness.run.loader import JobLoader, iterate_jobs
from harness.run.prediction_cache import PredictionCache
from harness.run.runner import ShardResult, run_shard, throughput_summary
from harness.tasks import get_task

SIZES = [(12, 16), (12, 16), (20, 8), (12, 16), (9, 9), (20, 8), (12, 16)]


class FakeTimeline(HostTimeline):
    """Each stamp advances the clock by ``step`` seconds; every synchronise is counted."""

    def __init__(self, step: float = 0.5) -> None:
        ticks = itertools.count()
        super().__init__(clock=lambda: next(ticks) * step, sync=self._sync)
        self.syncs = 0

    def _sync(self) -> None:
        self.syncs += 1


class Pictures(Dataset):
    """Semantic samples whose PNGs have the sizes in ``SIZES``; optionally slow to load for early indices, so
    workers finish later jobs first."""

    def __init__(self, root: Path, slow: bool = False, broken: int | None = None) -> None:
        self.root, self.slow, self.broken = root, slow, broken
        self.info = DatasetInfo(name="pictures", task="semantic", split="val", root=root, classes=["a", "b"],
                                category_ids=[0, 1], ignore_index=255)
        for index, (height, width) in enumerate(SIZES):
            path = root / f"{index}.png"
            if not path.exists():
                pixels = np.full((height, width, 3), index * 20, np.uint8)
                Image.fromarray(pixels).save(path)

    def __len__(self) -> int:
        return len(SIZES)

    def source_files(self):
        return []

    def __getitem__(self, index: int) -> Sample:
        if self.slow:
            time.sleep(0.05 * (len(SIZES) - index))
        if index == self.broken:
            raise DataError("cannot read this picture", self.root / f"{index}.png")
        height, width = SIZES[index]
        return Sample(sample_id=index, image_path=self.root / f"{index}.png",
                      target=SemanticTarget(label_map=np.full((height, width), index % 2, np.uint8)))


class Painter(Adapter):
    """Predicts class (mean pixel value // 20) % 2 everywhere; ``prepare`` returns that mean, and each image
    reports its stages like the in-repo networks do."""

    task = "semantic"
    batch_invariant = True

    def __init__(self, *args: Any, marks: bool = True, **kwargs: Any) -> None:
        super().__init__("painter", *args, **kwargs)
        self.marks = marks
        self.seen_prepared: list[Any] = []
        self.prepared_in_this_process: list[Any] = []

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task="semantic", classes=["a", "b"])

    def prepare(self, sample: Sample) -> Any:
        self.prepared_in_this_process.append(sample.sample_id)
        return int(sample.load_image().mean())

    def predict(self, samples):
        out = []
        for sample in samples:
            self.seen_prepared.append(sample.prepared)
            value = sample.prepared if sample.prepared is not None else int(sample.load_image().mean())
            if self.marks:
                self.mark("transfer")
                self.mark("model")
            out.append(SemanticPrediction(label_map=np.full(sample.load_image().shape[:2], (value // 20) % 2,
                                                            np.uint8)))
        return out


@pytest.fixture()
def pictures(tmp_path: Path) -> Pictures:
    return Pictures(tmp_path)


# ------------------------------------------------------------------------------------------------ the clock
def test_stage_clock_books_marks_to_stages_and_synchronises_only_at_its_edges():
    timeline = FakeTimeline(step=1.0)
    clock = StageClock(timeline)
    clock.mark("ignored")  # outside a batch: no stamp, no stage
    clock.start()
    for stage in ("data_wait", "transfer", "model", "transfer", "model", "postprocess"):
        clock.mark(stage)
    assert timeline.syncs == 1  # marks never synchronise
    stages = clock.stop()
    assert timeline.syncs == 2
    assert stages == {"data_wait": 1.0, "transfer": 2.0, "model": 2.0, "postprocess": 1.0}


def test_cuda_timeline_reads_events_only_after_the_closing_synchronise():
    """The CUDA clock with a stand-in for ``torch.cuda``: one event per mark on the device's stream, elapsed times
    read only once the closing synchronise has completed them (CUDA raises otherwise), two synchronisations."""
    from types import SimpleNamespace

    from harness.run.latency import CudaTimeline

    state = {"now": 0.0, "syncs": 0, "streams": []}

    class Event:
        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing
            self.at: float | None = None
            self.synced_at = -1

        def record(self, stream: Any) -> None:
            state["streams"].append(stream)
            state["now"] += 2.0  # milliseconds of GPU work queued before this event
            self.at, self.synced_at = state["now"], state["syncs"]

        def elapsed_time(self, end: "Event") -> float:
            if state["syncs"] <= max(self.synced_at, end.synced_at):
                raise RuntimeError("event not completed (no synchronise since it was recorded)")
            return end.at - self.at

    def synchronize(device: Any) -> None:
        state["syncs"] += 1

    cuda = SimpleNamespace(Event=Event, current_stream=lambda device: f"stream of {device}", synchronize=synchronize)
    timeline = CudaTimeline.__new__(CudaTimeline)
    timeline._torch, timeline.device = SimpleNamespace(cuda=cuda), "cuda:1"
    clock = StageClock(timeline)
    clock.start()
    for stage in ("data_wait", "transfer", "model", "model"):
        clock.mark(stage)
    assert state["syncs"] == 1
    stages = clock.stop()
    assert state["syncs"] == 2
    assert stages == {"data_wait": 0.002, "transfer": 0.002, "model": 0.004}
    assert set(state["streams"]) == {"stream of cuda:1"}


def test_run_loop_times_stages_apart_with_two_synchronisations_per_batch(pictures):
    task = get_task("semantic")
    timeline = FakeTimeline(step=0.25)
    adapter = Painter()
    _, shard = run_shard(task, pictures, adapter, indices=range(len(pictures)), batch_size=3, timeline=timeline)
    batches = 3  # 3 + 3 + 1 samples
    assert timeline.syncs == 2 * batches
    assert len(shard.batch_stages) == batches
    for stages, size, seconds in zip(shard.batch_stages, shard.batch_sizes, shard.batch_seconds):
        # data wait, then per image transfer + model, the tail as postprocess, then the metric update
        assert stages == {"data_wait": 0.25, "transfer": 0.25 * size, "model": 0.25 * size, "postprocess": 0.25,
                          "metric": 0.25}
        assert seconds == stages["transfer"] + stages["model"] + stages["postprocess"]  # model stages only
    assert adapter.stage_marker is None  # the loop's clock is not left on the adapter


def test_an_adapter_that_marks_nothing_is_all_model(pictures):
    timeline = FakeTimeline(step=1.0)
    _, shard = run_shard(get_task("semantic"), pictures, Painter(marks=False), indices=range(3), batch_size=3,
                         timeline=timeline)
    assert shard.batch_stages == [{"data_wait": 1.0, "model": 1.0, "metric": 1.0}]
    assert shard.batch_seconds == [1.0]


def test_warm_up_runs_until_input_shapes_repeat():
    a, b, c = (1, 2, 3), (4, 5, 3), (6, 7, 3)
    assert warmup_count([(a,), (a,), (a,), (a,)]) == 1  # the set count when shapes repeat at once
    assert warmup_count([(a,), (b,), (a, b), (a,), (b,), (a,)]) == 2  # batch 1 brought b; batch 2 repeats
    assert warmup_count([(a,), (b,), (c,), (a,)]) == 2  # never more than half of the batches
    assert warmup_count([None, None, None]) == 1  # replayed cache chunks count as repeating
    assert warmup_count([(a,)]) == 1 and warmup_count([]) == 0
    assert warmup_count([(a,), (a,), (b,)], minimum=2) == 2


def test_no_images_per_s_without_a_timed_batch_after_warm_up():
    one = LatencyRecorder(batch_seconds=[2.0], batch_sizes=[4]).summary()
    assert one["images_per_s"] is None and one["reliable"] is False and one["warmup_batches"] == 1
    assert images_per_s(one) == "n/a" and "no timed batch" in describe_stages(one)
    several = LatencyRecorder(batch_seconds=[9.0, 1.0, 1.0], batch_sizes=[4, 4, 2]).summary()
    assert several["images_per_s"] == 3.0 and images_per_s(several) == "3.0"


def test_throughput_summary_pools_ranks_and_refuses_a_rank_without_timed_batches():
    def shard(seconds: list[float]) -> ShardResult:
        return ShardResult(states=[], records=[], batch_seconds=seconds, batch_sizes=[2] * len(seconds),
                           samples=2 * len(seconds), predicted=2 * len(seconds), cached=0,
                           batch_shapes=[None] * len(seconds),
                           batch_stages=[{"data_wait": 0.5, "model": s} for s in seconds],
                           memory={"peak_rss_mib": 100.0 + len(seconds)})
    both = throughput_summary([shard([5.0, 1.0, 1.0]), shard([5.0, 0.5])], "cpu")
    assert both["images_per_s"] == pytest.approx(2.0 + 4.0) and both["reliable"] is True
    assert both["stages_ms"] == {"data_wait": 500.0, "model": pytest.approx(2500.0 / 3)}
    assert both["peak_rss_mib"] == 103.0  # the largest rank's peak
    short = throughput_summary([shard([5.0, 1.0, 1.0]), shard([5.0])], "cpu")
    assert short["images_per_s"] is None and short["reliable"] is False


# ------------------------------------------------------------------------------------------- data stage
@pytest.mark.parametrize("workers", [0, 2])
def test_jobs_come_back_in_order_whatever_finishes_first(tmp_path, workers):
    dataset = Pictures(tmp_path, slow=True)  # early samples are the slowest to load
    loader = JobLoader(dataset, Painter(), [[0, 1], [2, 3], [4, 5], [6]])
    jobs = list(iterate_jobs(loader, workers))
    assert [[s.sample_id for s in job.samples] for job in jobs] == [[0, 1], [2, 3], [4, 5], [6]]
    assert [job.payloads for job in jobs] == [[0, 20], [40, 60], [80, 100], [120]]
    assert all(all(job.prepared) for job in jobs)
    # the images decoded in a worker travel with their samples: predict does not decode again
    assert all(sample._decoded for job in jobs for sample in job.samples)


def test_large_arrays_cross_from_workers_in_shared_memory_and_arrive_as_the_same_numpy_arrays(tmp_path, monkeypatch):
    from harness.run import loader as loader_module

    monkeypatch.setattr(loader_module, "SHARE_BYTES", 0)  # every array goes through shared memory (forked workers)
    loader = JobLoader(Pictures(tmp_path), Painter(), [[0, 1, 2], [3, 4, 5, 6]])
    serial = [sample for job in iterate_jobs(loader, 0) for sample in job.samples]
    shared = [sample for job in iterate_jobs(loader, 2) for sample in job.samples]
    for left, right in zip(serial, shared, strict=True):
        for image, other in ((left.load_image(), right.load_image()),
                             (left.target.label_map, right.target.label_map)):
            assert isinstance(other, np.ndarray) and other.dtype == image.dtype
            np.testing.assert_array_equal(image, other)


def test_a_user_error_in_a_worker_stays_a_one_line_user_error(tmp_path):
    loader = JobLoader(Pictures(tmp_path, broken=3), Painter(), [[0, 1], [2, 3]])
    with pytest.raises(DataError) as raised:
        list(iterate_jobs(loader, 1))
    assert str(raised.value) == f"{tmp_path / '3.png'}: cannot read this picture"


def test_workers_must_not_be_negative(pictures):
    with pytest.raises(BenchError, match="--workers"):
        run_shard(get_task("semantic"), pictures, Painter(), indices=range(2), workers=-1)


@pytest.mark.parametrize("workers", [0, 2])
def test_prepared_payloads_reach_predict_and_are_dropped_after_the_batch(pictures, workers):
    adapter = Painter()
    _, shard = run_shard(get_task("semantic"), pictures, adapter, indices=range(len(pictures)), batch_size=3,
                         workers=workers)
    assert adapter.seen_prepared == [index * 20 for index in range(len(pictures))]
    # with workers, prepare ran in their processes, not here
    assert adapter.prepared_in_this_process == ([] if workers else list(range(len(pictures))))
    assert shard.batch_shapes[0] == ((12, 16, 3), (12, 16, 3), (20, 8, 3))


def test_cached_samples_are_neither_prepared_nor_decoded_and_workers_start_at_the_first_miss(pictures, tmp_path):
    task = get_task("semantic")
    cache = PredictionCache(tmp_path / "cache", "painter", "pictures", "cpu")
    first = Painter()
    run_shard(task, pictures, first, indices=range(4), batch_size=2, cache=cache)  # samples 0-3 cached
    again = Painter()
    cache = PredictionCache(tmp_path / "cache", "painter", "pictures", "cpu")
    metrics, shard = run_shard(task, pictures, again, indices=range(len(pictures)), batch_size=2, cache=cache,
                               workers=2)
    assert shard.cached == 4 and shard.predicted == 3
    assert again.seen_prepared == [80, 100, 120]  # only the misses were prepared
    # batches are loaded here until one needs the model (a fully cached run starts no worker); then workers
    assert again.prepared_in_this_process == [4, 5]


def test_metrics_are_the_same_for_any_worker_count_and_batch_size(pictures):
    task = get_task("semantic")
    results = []
    for workers, batch_size in ((0, 1), (1, 3), (2, 2), (2, 16)):
        metrics, _ = run_shard(task, pictures, Painter(), indices=range(len(pictures)), batch_size=batch_size,
                               workers=workers)
        results.append([metric.compute().metrics for metric in metrics])
    assert all(result == results[0] for result in results)
    assert results[0][0]["mIoU"] == 1.0  # the painter is right everywhere: a real score, not an empty one


# ---------------------------------------------------------------------------------------- in-repo models
def test_in_repo_semantic_model_transfers_uint8_and_scores_as_it_did(tmp_path):
    """The uint8 payload normalised on the device gives the label maps of the old float path, bit for bit."""
    import torch

    from adapters.inrepo.semantic.adapter import FCNAdapter
    from adapters.inrepo.semantic.data import normalise

    adapter = FCNAdapter("fcn")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    sample = Sample(sample_id=0, image_path=tmp_path / "never-read.png", target=None)
    sample._decoded[0] = image  # as if decoded by the data stage
    payload = adapter.prepare(sample)
    assert payload.dtype == torch.uint8 and tuple(payload.shape) == (1, 3, 37, 53)
    sample.prepared = payload
    (prepared,) = adapter.predict([sample])
    sample.prepared = None
    (unprepared,) = adapter.predict([sample])
    with torch.inference_mode():  # the float path as it was before issue 15
        batch = normalise(image[None])
        stride = adapter.network.stride
        batch = torch.nn.functional.pad(batch, (0, -53 % stride, 0, -37 % stride), mode="replicate")
        reference = adapter.network(batch)[0, :, :37, :53].argmax(dim=0).to(torch.uint8).numpy()
    np.testing.assert_array_equal(prepared.label_map, reference)
    np.testing.assert_array_equal(unprepared.label_map, reference)


def test_in_repo_models_set_the_thread_count_once_per_run_not_per_batch(pictures, monkeypatch):
    import torch

    from adapters.inrepo.semantic.adapter import FCNAdapter

    adapter = FCNAdapter("fcn")
    adapter.info()  # loads the network before counting
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    calls: list[int] = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n))[1])
    try:
        dataset = Pictures(pictures.root)
        dataset.info.classes = list(adapter.info().classes)
        dataset.info.category_ids = list(range(len(dataset.info.classes)))
        run_shard(get_task("semantic"), dataset, adapter, indices=range(len(dataset)), batch_size=2)
    finally:
        real(previous)
    assert calls == [1, 2]  # pinned to one thread for the 4 batches, restored once at the end


def test_a_fully_cached_run_imports_no_torch(tmp_path):
    """The loop itself (data stage, clock, seeding, provenance) imports torch only when a model runs: with a
    model that needs no torch, a first run and a fully cached re-run with workers leave it unloaded."""
    import subprocess
    import sys

    script = f"""
import sys
from pathlib import Path
from tests.run.test_run_loop import Painter, Pictures
from harness.publish.provenance import provenance
from harness.run.prediction_cache import PredictionCache
from harness.run.runner import run_shard, throughput_summary
from harness.tasks import get_task
root = Path({str(tmp_path)!r})
dataset = Pictures(root)
_, first = run_shard(get_task("semantic"), dataset, Painter(), indices=range(7), batch_size=3,
                     cache=PredictionCache(root / "cache", "painter", "pictures", "cpu"))
_, again = run_shard(get_task("semantic"), dataset, Painter(), indices=range(7), batch_size=3, workers=2, seed=0,
                     cache=PredictionCache(root / "cache", "painter", "pictures", "cpu"))
assert first.predicted == 7 and again.cached == 7, (first.predicted, again.cached)
assert throughput_summary([again], "cpu")["cached_samples"] == 7
assert provenance("cpu", 0)["torch_settings"] == {{}}
print("torch" in sys.modules)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
