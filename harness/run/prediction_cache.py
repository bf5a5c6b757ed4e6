"""Per-sample prediction cache, so re-scoring or resuming a run never calls the model twice for one image.

Layout: ``<root>/<adapter fingerprint>/<dataset fingerprint>-<device kind>-<code>-<batching>/chunk-<hash>.pred``.
The adapter fingerprint covers name, options and a hash of the weights; the dataset fingerprint covers the ground
truth; the device kind (``cpu``/``cuda``) keeps GPU and CPU numbers apart; ``code`` hashes the adapter package's
source and the versions of the libraries models run on, so a fixed preprocessing bug or a new torch never
serves stale predictions (metric code is deliberately not part of it: re-scoring is what the cache is for);
``batching`` (``batching_key``) is the batch size, plus the number of processes for models that do not declare
themselves batch-invariant, so a run at another batch size never reports a number cached from differently
batched predictions.  Each model call becomes one chunk file, named by
a hash of the sample ids it holds, written to a temporary name and renamed into place: a killed run leaves whole
chunks or nothing, every process (rank) writes only its own files, and no lock or database is involved.  Chunks
also keep the call's wall time, so a resumed or re-scored run still reports the throughput it was measured at.
Files are read with the pickle-free codec in ``harness.io.safecodec``.

Each chunk also records, per sample, stamps of the image files the prediction was computed from
(``harness.run.input_stamps``): a sample whose image changed since (mirrored, replaced, truncated) is a miss
and is predicted again, alone.  The dataset part of the key (``harness.run.cache_key``) adds the data root
and the seed to the ground-truth fingerprint.  Chunk writes take a lock on the cache directory
(``harness.io.locks``) so two runs sharing a cache never interleave a write and a directory scan.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from harness.io import safecodec
from harness.run.input_stamps import sample_matches, stamp_sample
from harness.io.locks import locked

FORMAT_VERSION = 2  # 2: per-sample input stamps
MISSING = object()  # pass as ``default`` to tell a miss from a stored value


def sample_key(sample_id: Any) -> str:
    """JSON keeps ``7`` and ``"7"`` apart, so int and str ids never collide."""
    return json.dumps(sample_id)


def device_kind(device: str) -> str:
    return device.split(":")[0]


@dataclass
class CachedTiming:
    seconds: float
    batch_size: int


class PredictionCache:
    """Reads every chunk's index at start-up; decodes a chunk only when one of its samples is asked for."""

    def __init__(self, root: Path, adapter_fingerprint: str, dataset_fingerprint: str, device: str, code: str = "",
                 batching: str = "") -> None:
        self.directory = Path(root) / adapter_fingerprint / "-".join(
            part for part in (dataset_fingerprint, device_kind(device), code, batching) if part)
        self._where: dict[str, Path] = {}
        self._timing: dict[Path, CachedTiming] = {}
        self._decoded: dict[Path, dict[str, Any]] = {}
        #: every chunk holding a sample, with the stamps it was predicted under (a recomputed sample has several)
        self._candidates: dict[str, list[tuple[Path, Any]]] = {}
        self.stale = 0  # samples found but refused because an input file changed
        self.hits = 0
        self.writes = 0
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("chunk-*.pred")):
                self._index(path)

    def _index(self, path: Path) -> None:
        try:
            header = safecodec.read_header(path)
            if header.get("version") != FORMAT_VERSION:
                return
            keys = [sample_key(sample_id) for sample_id in header["ids"]]
            stamps = header.get("inputs") or [None] * len(keys)
        except Exception as exc:  # a damaged file only costs a recomputation
            warnings.warn(f"{path}: unreadable prediction cache chunk ignored ({type(exc).__name__})", stacklevel=2)
            return
        for key, stamp in zip(keys, stamps):
            self._where[key] = path
            self._candidates.setdefault(key, []).append((path, stamp))
        self._timing[path] = CachedTiming(float(header["seconds"]), int(header["batch_size"]))

    def __len__(self) -> int:
        return len(self._where)

    def chunk_of(self, sample_id: Any) -> Path | None:
        return self._where.get(sample_key(sample_id))

    def timing(self, chunk: Path) -> CachedTiming:
        return self._timing[chunk]

    def holds(self, sample: Any) -> bool:
        """Whether ``get(sample.sample_id, sample=sample)`` will find a prediction: the stamps are checked, no
        chunk is decoded (the data stage skips decoding such samples)."""
        candidates = self._candidates.get(sample_key(sample.sample_id), [])
        return any(sample_matches(stamp, sample) for _, stamp in candidates)

    def get(self, sample_id: Any, default: Any = None, sample: Any = None) -> Any:
        """The stored prediction; with ``sample``, only while the files it was predicted from are unchanged."""
        key = sample_key(sample_id)
        path = self._where.get(key)
        if path is None:
            return default
        if sample is not None:
            path = next((p for p, stamp in reversed(self._candidates.get(key, [])) if sample_matches(stamp, sample)),
                        None)
            if path is None:
                self.stale += 1
                return default
            self._where[key] = path
        if path not in self._decoded:
            try:
                header, values = safecodec.loads(path)
            except Exception as exc:
                warnings.warn(f"{path}: unreadable prediction cache chunk ignored ({type(exc).__name__}: {exc})",
                              stacklevel=2)
                for stale in [k for k, p in self._where.items() if p == path]:
                    del self._where[stale]
                    self._candidates[stale] = [c for c in self._candidates.get(stale, []) if c[0] != path]
                return default
            if len(self._decoded) >= 4:  # chunks are used in order; keep memory bounded
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[path] = dict(zip((sample_key(i) for i in header["ids"]), values))
        self.hits += 1
        return self._decoded[path][key]

    def put(self, sample_ids: Sequence[Any], predictions: Sequence[Any], seconds: float,
            samples: Sequence[Any] | None = None) -> Path:
        """Store one model call's predictions as one chunk (atomically; an existing identical chunk is replaced).

        ``samples`` (the predicted samples, in order) stamps their input files into the chunk; without them the
        chunk is served only to callers that do not pass a sample to ``get``.  The chunk name covers the stamps,
        so a recomputed sample never overwrites the chunk another process may be decoding.
        """
        ids = [sample_id.item() if hasattr(sample_id, "item") else sample_id for sample_id in sample_ids]
        stamps = [stamp_sample(sample) for sample in samples] if samples is not None else None
        name = hashlib.sha256(json.dumps([ids, stamps]).encode()).hexdigest()[:20]
        header = {"version": FORMAT_VERSION, "ids": ids, "seconds": float(seconds), "batch_size": len(ids)}
        if stamps is not None:
            header["inputs"] = stamps
        payload = safecodec.dumps(header, list(predictions))
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"chunk-{name}.pred"
        with locked(self.directory / ".lock"):
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pred", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        for index, sample_id in enumerate(ids):
            self._where[sample_key(sample_id)] = path
            self._candidates.setdefault(sample_key(sample_id), []).append(
                (path, stamps[index] if stamps is not None else None))
        self._timing[path] = CachedTiming(float(seconds), len(ids))
        self.writes += 1
        return path


def batching_key(adapter: Any, batch_size: int, world_size: int = 1) -> str:
    """The batch-related part of the cache key: ``b<batch size>``, plus ``w<processes>`` unless the adapter
    declares ``batch_invariant``.

    The batch size is always part of it, even for batch-invariant models whose predictions would be reusable:
    each chunk keeps the wall time of one model call, which a cached run replays as its throughput, and a batch
    of 4 timed at batch size 16 would be a wrong number.  For a batch-sensitive model (one that pads a batch to
    its largest image, say) the predictions themselves depend on the batch, and the batches depend on the
    number of processes too (each rank batches its own contiguous slice), hence ``w``.  What the key cannot
    see: a resumed run batches only the samples still missing, and ``--limit`` moves the rank boundaries; for
    a batch-sensitive model such a run can differ in the last bits from a fresh one.
    """
    key = f"b{int(batch_size)}"
    return key if getattr(adapter, "batch_invariant", False) else f"{key}w{int(world_size)}"


def code_fingerprint(adapter: Any) -> str:
    """Hash of every source file of the adapter's top-level package, plus model library versions.

    All files, not the modules loaded so far: an adapter imports parts of its package lazily, and the key must
    not depend on what an earlier model in the same process happened to import.
    """
    import importlib

    from harness.publish.provenance import package_versions

    top = importlib.import_module(type(adapter).__module__.split(".")[0])
    digest = hashlib.sha256(json.dumps(sorted(package_versions().items())).encode())
    for folder in getattr(top, "__path__", []) or [Path(str(top.__file__)).parent]:
        root = Path(folder)
        for file in sorted(root.rglob("*.py")):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def default_cache_dir() -> Path:
    from harness.io.cache_dir import cache_root

    return cache_root() / "predictions"
