"""One ``bench run``: resolve names, evaluate each model, write its report, update the leaderboard.

Kept apart from the CLI so suites, tests and torchrun workers run exactly the same code path.  Under torchrun
(``WORLD_SIZE`` > 1) every rank evaluates its shard and rank 0 alone merges, scores and writes; a single process
is the same path with one shard.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.core.catalog import ADAPTERS
from harness.core.adapter import Adapter
from harness.run import distributed
from harness.run.confidence import DEFAULT_LEVEL, DEFAULT_RESAMPLES, confidence_intervals
from harness.datasets import DATASETS
from harness.core.dataset import Dataset
from harness.core.errors import BenchError
from harness.publish.leaderboard import update_leaderboard
from harness.publish.trackers import check_trackers, log_run
from harness.run.prediction_cache import PredictionCache, batching_key, code_fingerprint, default_cache_dir
from harness.publish.provenance import provenance, utc_now
from harness.publish.reports import iter_records, make_run_id, write_report
from harness.core.protocol import Protocol
from harness.core.run_record import DatasetRef, ModelRef, RunRecord
from harness.run.precision import with_precision
from harness.run.loader import default_workers
from harness.run.runner import finish, run_shard, sample_indices
from harness.run.cache_key import dataset_cache_key
from harness.run.label_mapping import with_label_map
from harness.run.model_options import adapter_options
from harness.run.run_conditions import run_identity
from harness.run.run_folders import clean_stale_runs, mark_finished, mark_started
from harness.submissions import SUBMISSIONS
from harness.tasks import get_task
from harness.core.task import Task


@dataclass
class RunConfig:
    task: str
    dataset: str | None = None
    data_root: Path | None = None
    split: str | None = None
    models: tuple[str, ...] = ()
    checkpoint: Path | None = None
    trust_checkpoint: bool = False
    limit: int | None = None
    batch_size: int = 16
    device: str = "cpu"
    seed: int = 0
    reports_dir: Path = Path("reports")
    leaderboards_dir: Path = Path("leaderboards")
    #: reuse and store per-sample predictions (``--no-cache`` turns it off)
    cache: bool = True
    cache_dir: Path | None = None
    #: bootstrap resamples for confidence intervals (0: none)
    bootstrap: int = DEFAULT_RESAMPLES
    confidence_level: float = DEFAULT_LEVEL
    #: keep an existing report made with the same model, data and limit instead of running again (suites)
    skip_existing: bool = False
    #: a named convention of the protocol's metrics instead of the official one (``--dialect``)
    dialect: str | None = None
    #: report pictures: gallery size (0: no pictures, per-image table or error analysis)
    gallery: int = 12
    #: a label for this run (``--name``): part of its run id and of its row on the site, next to the model name
    name: str | None = None
    #: free-form labels (``--tag``, repeatable), recorded in metrics.json and shown in the report
    tags: tuple[str, ...] = ()
    #: keypoints: where the people come from (``--protocol gt-boxes|detector|bottom-up``, harness.run.keypoint_protocols)
    keypoint_protocol: str | None = None
    person_boxes: Path | None = None
    person_detector: str | None = None
    #: keypoints: average each heatmap model's output with its mirrored crop's (``--flip-test``); the model is
    #: recorded and ranked as ``<name>+flip``
    flip_test: bool = False
    #: autocast precision of the forward passes (``--precision``, harness.run.precision): fp16/bf16 runs are
    #: recorded and ranked as ``<name>+fp16`` / ``<name>+bf16``
    precision: str = "fp32"
    #: a COCO-format dataset anywhere (``--ann-file``/``--img-dir``) instead of ``dataset``/``data_root``
    ann_file: Path | None = None
    img_dir: Path | None = None
    #: adapter options (``--model-arg key=value``, dotted keys kept) and OpenMMLab config overrides
    #: (``--cfg-options``), checked against each model's ``accepted_options`` (harness.run.model_options)
    model_args: dict[str, Any] = field(default_factory=dict)
    cfg_options: dict[str, Any] = field(default_factory=dict)
    #: model classes -> dataset classes (``--label-map FILE``, harness.run.label_mapping)
    label_map: Path | None = None
    #: experiment trackers to send each finished run to (``--log``, harness.publish.trackers)
    trackers: tuple[str, ...] = ()
    #: average each supporting model's outputs over its input rescaled by these factors (``--multi-scale``); the
    #: model is recorded and ranked as ``<name>+ms<scales>``; empty: off
    multi_scale: tuple[float, ...] = ()
    #: data-loading worker processes decoding ahead of the model (``--workers``; None: ``default_workers``,
    #: 0: the run loop's own process); metrics are bit-identical for any count
    workers: int | None = None


def default_models(task: str, keypoint_protocol: str | None = None) -> list[str]:
    """In-repo models that run with no download: every adapter of the task marked ``runs_by_default``.

    Keypoints: the bottom-up ones (``bottom_up = True``) under ``--protocol bottom-up``, the top-down ones
    otherwise."""
    names = [name for name, cls in ADAPTERS.items()
             if getattr(cls, "task", None) == task and getattr(cls, "runs_by_default", False)]
    if task == "keypoints":
        bottom_up = keypoint_protocol == "bottom-up"
        names = [name for name in names if bool(getattr(ADAPTERS.get(name), "bottom_up", False)) == bottom_up]
    return names


def open_dataset(task: Task, name: str | None, data_root: Path | None, split: str | None,
                 ann_file: Path | None = None, img_dir: Path | None = None) -> Dataset:
    if ann_file is not None or img_dir is not None:
        if ann_file is None or img_dir is None:
            raise BenchError("--ann-file and --img-dir go together (the COCO-format file and its image folder)")
        if name is not None or data_root is not None or split is not None:
            raise BenchError("--ann-file/--img-dir name the dataset; drop --dataset/--data-root/--split")
        from harness.datasets.coco_file import open_coco_file

        return open_coco_file(ann_file, img_dir, task.name)
    dataset = DATASETS.get(name or task.default_dataset)(data_root, split, task.name)
    if dataset.info.task != task.name:
        raise BenchError(f"dataset {dataset.info.name!r} is a {dataset.info.task} dataset, not {task.name}")
    return dataset


def build_adapter(name: str, task: Task, config: RunConfig) -> Adapter:
    cls = ADAPTERS.get(name)
    if getattr(cls, "task", None) != task.name:
        raise BenchError(f"model {name!r} is a {getattr(cls, 'task', '?')} model, not {task.name}")
    argument = ADAPTERS.argument(name)  # mmdet:CONFIG -> CONFIG; a name or path/to/file.py:Class has none
    options = {"config": argument} if argument else {}
    options.update(adapter_options(cls, name, config.model_args, config.cfg_options))
    device = distributed.context().device_for(config.device)
    adapter = cls(name, checkpoint=config.checkpoint, device=device, trust_checkpoint=config.trust_checkpoint,
                  options=options)
    return with_label_map(adapter, config.label_map) if config.label_map is not None else adapter


def with_test_time(adapters: list[Adapter], explicit: bool, supports: str, option: str, value: Any, suffix: str,
                   what: str, who: str) -> list[Adapter]:
    """The adapters whose class says ``supports()`` (a classmethod named by ``supports``), switched to a test-time
    augmentation (``options[option] = value``, part of the model fingerprint, so of the cache key and run identity)
    and renamed ``<name><suffix>`` (a different model on the leaderboard); a model named with ``--model`` that
    cannot is refused, unnamed ones are left out.  ``what`` names the augmentation, ``who`` the models that have
    it, in the errors."""
    chosen = []
    for adapter in adapters:
        check = getattr(type(adapter), supports, None)
        if not (callable(check) and check()):
            if explicit:
                raise BenchError(f"model {adapter.name!r} has no {what} ({who} have)")
            continue
        adapter.options = {**adapter.options, option: value}
        adapter.name = f"{adapter.name}{suffix}"
        chosen.append(adapter)
    if not chosen:
        raise BenchError(f"no model with a {what} among the models to run")
    return chosen


def with_flip_test(adapters: list[Adapter], explicit: bool) -> list[Adapter]:
    """``--flip-test``: heatmap keypoint models average with the mirrored crop, ranked as ``<name>+flip``."""
    return with_test_time(adapters, explicit, "supports_flip_test", "flip_test", True, "+flip", "flip test",
                          "heatmap models")


def scales_text(scales: tuple[float, ...]) -> str:
    """``0.5,1,1.5``: the scales as the model name and the records show them."""
    return ",".join(f"{scale:g}" for scale in scales)


def with_multi_scale(adapters: list[Adapter], explicit: bool, scales: tuple[float, ...]) -> list[Adapter]:
    """``--multi-scale 0.5,1,1.5``: models that average their outputs over rescaled inputs (the in-repo semantic
    networks), ranked as ``<name>+ms0.5,1,1.5``."""
    return with_test_time(adapters, explicit, "supports_multi_scale", "multi_scale", [float(s) for s in scales],
                          f"+ms{scales_text(scales)}", "multi-scale test", "the in-repo semantic networks")


def augmentation_of(adapter: Adapter) -> dict[str, Any]:
    """The test-time augmentation a run used, for its provenance (empty for a plain run, whose record is then
    unchanged)."""
    chosen: dict[str, Any] = {}
    if adapter.options.get("flip_test"):
        chosen["flip"] = True
    if adapter.options.get("multi_scale"):
        chosen["scales"] = list(adapter.options["multi_scale"])
    return {"test_time": chosen} if chosen else {}


def seed_everything(seed: int) -> None:
    """Seed Python's and numpy's generators, and torch's if it is loaded; otherwise the run loop seeds torch
    just before the first model call (``run_shard(seed=...)``), so a fully cached run never imports it."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def find_existing(reports_dir: Path, task: str, dataset: Dataset, dataset_fp: str, adapter: Adapter, model_fp: str,
                  limit: int | None, protocol_key: str | None = None) -> dict[str, Any] | None:
    """The newest report of this exact model (weights included) on this exact ground truth, if any.

    Fingerprints are passed in: computing them hashes every ground-truth file (gigabytes for Sintel) and the
    weights (hundreds of MB for detectors), so a run computes each once.
    """
    found = None
    for record in iter_records(reports_dir):
        if (record.get("task") == task and record.get("limit") == limit
                and record["dataset"].get("name") == dataset.info.name and record["dataset"].get("fingerprint") == dataset_fp
                and record["model"].get("name") == adapter.name and record["model"].get("fingerprint") == model_fp
                and (protocol_key is None or (record.get("protocol") or {}).get("key") == protocol_key)):
            if found is None or record["finished_utc"] >= found["finished_utc"]:
                found = record
    return found


def run_models(config: RunConfig, progress: Callable[[str, int], Callable[[int], None]] | None = None) -> list[dict[str, Any]]:
    """Evaluate every requested model; returns the written records (metrics.json contents) on rank 0.

    Other ranks of a distributed run return an empty list: they only compute their shard.
    """
    context = distributed.context()
    check_trackers(config.trackers)  # a missing tracker package is refused before any model runs
    task = get_task(config.task)
    models = list(config.models) or default_models(task.name, config.keypoint_protocol)
    if not models:
        raise BenchError(f"no models registered for task {task.name!r}")
    adapters = [build_adapter(name, task, config) for name in models]  # fail on a bad name before any work
    if config.flip_test:
        adapters = with_flip_test(adapters, explicit=bool(config.models))
    adapters = with_precision(adapters, config.precision)
    if config.multi_scale:
        adapters = with_multi_scale(adapters, explicit=bool(config.models), scales=config.multi_scale)
    dataset = open_dataset(task, config.dataset, config.data_root, config.split, config.ann_file, config.img_dir)
    if config.keypoint_protocol is not None or task.name == "keypoints":  # default: gt-boxes, top-down models
        from harness.run.keypoint_protocols import KeypointCondition, condition_run

        condition = KeypointCondition(config.keypoint_protocol or "gt-boxes", config.person_boxes,
                                      config.person_detector)
        dataset, adapters = condition_run(task, dataset, adapters, condition, bool(config.models),
                                          lambda name: build_adapter(name, task, replace(
                                              config, checkpoint=None, model_args={}, cfg_options={}, label_map=None)))
    if not config.models:  # a default run compares the models that have weights for this dataset
        left_out = [adapter.name for adapter in adapters if not adapter.has_weights_for(dataset.info)]
        adapters = [adapter for adapter in adapters if adapter.name not in left_out]
        if left_out and context.is_main:
            print(f"note: left out (no weights for {dataset.info.name}): {', '.join(left_out)}")
        if not adapters:
            raise BenchError(f"no {task.name} model has weights for dataset {dataset.info.name!r}")
    protocol = task.protocol(dataset.info)
    task.metrics(dataset.info, config.dialect)  # refuse an unknown dialect before any model runs
    fingerprint = dataset.fingerprint()
    indices = sample_indices(dataset, config.limit)
    context.start(config.device)
    workers = default_workers(context.world_size) if config.workers is None else config.workers
    if context.is_main:
        clean_stale_runs(config.reports_dir)  # folders of killed runs move to <reports>/.partial/
    records = []
    for adapter in adapters:
        adapter.check_compatible(dataset.info)
        model_fingerprint = adapter.fingerprint()
        if config.skip_existing:
            existing = find_existing(config.reports_dir, task.name, dataset, fingerprint, adapter, model_fingerprint,
                                     config.limit, protocol.version_key)
            if existing is not None:
                if context.is_main:
                    records.append({**existing, "skipped": True})
                continue
        seed_everything(config.seed)
        started = utc_now()
        # one run id for every rank: dense submission files are written by the rank that predicted them
        run_id = context.all_gather(make_run_id(task.name, dataset.info.name,
                                                adapter.name + (f"_{config.name}" if config.name else "")))[0]
        if context.is_main:
            mark_started(config.reports_dir / run_id)
        submission = SUBMISSIONS.get(protocol.submission)(dataset.info, config.reports_dir / run_id)
        shard_indices = context.shard(indices)
        on_batch = progress(adapter.name, len(shard_indices)) if progress and context.is_main else None
        cache = None
        if config.cache:
            cache = PredictionCache(config.cache_dir or default_cache_dir(), model_fingerprint,
                                    dataset_cache_key(fingerprint, dataset, config.seed),
                                    adapter.device, code_fingerprint(adapter),
                                    batching_key(adapter, config.batch_size, context.world_size))
        failure: Exception | None = None
        try:
            _, shard = run_shard(task, dataset, adapter, indices=shard_indices, batch_size=config.batch_size,
                                 on_batch=on_batch, cache=cache, dialect=config.dialect, submission=submission,
                                 workers=workers, seed=config.seed)
        except Exception as exc:  # exchanged first, so no rank waits forever in the gather below
            failure = exc
        context.raise_if_any_failed(failure)
        shards = context.gather(shard)
        if context.is_main:
            assert shards is not None  # rank 0 receives every rank's shard
            records.append(_score_and_write(config, task, protocol, dataset, fingerprint, adapter, model_fingerprint,
                                            shards, started, run_id, submission, workers))
        context.barrier()
    return records


def _given(config: RunConfig) -> dict[str, Any]:
    """The user's data and model flags (``--ann-file``, ``--img-dir``, ``--model-arg``, ``--cfg-options``,
    ``--label-map``) as given, for the provenance; only those that were set."""
    given = {"ann_file": config.ann_file, "img_dir": config.img_dir, "model_args": config.model_args,
             "cfg_options": config.cfg_options, "label_map": config.label_map}
    return {key: str(value) if isinstance(value, Path) else value for key, value in given.items() if value}


def _published_for(published: Any, registry: str | None) -> dict[str, float] | None:
    """The published metrics of the model when they were measured on the dataset this run scored, else None."""
    if not isinstance(published, dict) or published.get("dataset") != registry:
        return None
    return {str(k): float(v) for k, v in (published.get("metrics") or {}).items()}


def _score_and_write(config: RunConfig, task: Task, protocol: Protocol, dataset: Dataset, fingerprint: str,
                     adapter: Adapter, model_fingerprint: str, shards: list, started: str, run_id: str,
                     submission: Any, workers: int) -> dict[str, Any]:
    evaluation = finish(task, dataset, shards, adapter.device, config.dialect)
    submission.finish(evaluation.records)
    intervals, bootstrap = confidence_intervals(evaluation.metrics, evaluation.samples, config.bootstrap, config.seed,
                                                config.confidence_level)
    info = adapter.info()
    run = RunRecord(
        run_id=run_id,
        task=task.name,
        dataset=DatasetRef(name=dataset.info.name, split=dataset.info.split, root=str(dataset.info.root),
                           fingerprint=fingerprint, size=len(dataset),
                           # how to open it again (``bench eval --run``): registry name, --data-root, --split as given
                           registry=None if config.ann_file is not None else config.dataset or task.default_dataset,
                           data_root=str(config.data_root) if config.data_root is not None else None,
                           requested_split=config.split,
                           ann_file=str(config.ann_file) if config.ann_file is not None else None,
                           img_dir=str(config.img_dir) if config.img_dir is not None else None),
        model=ModelRef(name=adapter.name, fingerprint=model_fingerprint,
                       checkpoint=str(adapter.weights_file()) if adapter.weights_file() else None,
                       input_size=list(info.input_size) if info.input_size is not None else None,
                       parameters=info.parameters,
                       # the model zoo's own number for this dataset, when the adapter knows it (OpenMMLab metafiles)
                       published=_published_for(info.extra.get("published"),
                                                 None if config.ann_file else config.dataset or task.default_dataset)),
        limit=config.limit,
        batch_size=config.batch_size,
        protocol={**protocol.describe(config.dialect),
                  **({"condition": dataset.info.extra["keypoint_protocol"]}
                     if "keypoint_protocol" in dataset.info.extra else {})},
        predictions={"format": protocol.submission, "path": submission.entry},
        samples=evaluation.samples,
        metrics=dict(evaluation.result.metrics),
        confidence={name: list(intervals[name]) for name in evaluation.result.metrics if name in intervals},
        bootstrap=bootstrap,
        higher_is_better={name: evaluation.result.higher_is_better.get(name, protocol.higher_is_better(name))
                          for name in evaluation.result.metrics},
        per_class=evaluation.result.per_class,
        curves=evaluation.result.curves,
        settings=evaluation.result.settings,
        throughput=evaluation.throughput,
        provenance={**provenance(config.device, config.seed), "world_size": len(shards), "precision": config.precision,
                    "workers": workers, **_given(config), **augmentation_of(adapter)},
        started_utc=started,
        finished_utc=utc_now(),
        extra={"name": config.name, "tags": list(config.tags),
               # the weights, data copy and conditions: leaderboard columns and row (harness.publish.identity)
               "identity": run_identity(config, adapter, dataset, fingerprint, info, evaluation.result.settings)},
    )
    record = run.to_dict()
    pictures = None
    if config.gallery > 0:
        from harness.publish.pictures.build import build_pictures_safely

        pictures = build_pictures_safely(config.reports_dir / run_id, record, dataset,
                                         sample_indices(dataset, config.limit), gallery_size=config.gallery,
                                         seed=config.seed)
        record["analysis"] = pictures.summary()
    write_report(config.reports_dir / run_id, record, pictures)
    mark_finished(config.reports_dir / run_id)
    if config.trackers:
        record["logged"] = log_run(check_trackers(config.trackers), record, config.reports_dir / run_id)
    if config.limit is None and config.dialect is None:  # leaderboards hold official, full-dataset numbers only
        update_leaderboard(config.leaderboards_dir, task.name, record, protocol.columns, protocol.headline,
                           record["higher_is_better"].get(protocol.headline, protocol.higher_is_better(protocol.headline)))
    record["run_dir"] = str(config.reports_dir / run_id)
    return record
