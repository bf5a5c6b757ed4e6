"""Column extraction with one-line errors: COCO dicts in, checked numpy columns out.

The fast path converts a whole column at once; only when that fails (a missing key, a ragged list, a string
where a number belongs) does a slow scan run to find and name the first offending item.  So a 500k-detection
results list costs a few vectorised passes, and a bad one still produces "result #12: ..." instead of a
traceback from inside numpy.
"""
from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import numpy as np

from harness.core.errors import BenchError

Where = Callable[[int], str]
ErrorType = type[BenchError]


def result_where(index: int) -> str:
    return f"result #{index}"


def annotation_where(annotations: Sequence[Any]) -> Where:
    def where(index: int) -> str:
        item = annotations[index]
        ann_id = item.get("id", "?") if isinstance(item, dict) else "?"
        return f"annotation #{index} (id {ann_id})"

    return where


def require_list(container: Any, key: str, error: ErrorType, path: str | Path | None, what: str) -> list:
    if not isinstance(container, dict):
        raise error(f"{what} must be a JSON object with {key!r}, got {type(container).__name__}", path)
    if key not in container:
        raise error(f"{what} has no {key!r} list", path)
    value = container[key]
    if not isinstance(value, list):
        raise error(f"{what}: {key!r} must be a list, got {type(value).__name__}", path)
    return value


def column(items: Sequence[Any], key: str, where: Where, error: ErrorType, path: str | Path | None) -> list:
    """``[item[key] for item in items]``, or an error naming the first item that is not a dict with ``key``."""
    try:
        return [item[key] for item in items]
    except (KeyError, TypeError, IndexError):
        pass
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise error(f"{where(index)}: expected an object, got {type(item).__name__}", path)
        if key not in item:
            raise error(f"{where(index)}: missing key {key!r}", path)
    raise AssertionError("unreachable")  # pragma: no cover


def optional_column(items: Sequence[Any], key: str, default: Any) -> list:
    return [item.get(key, default) for item in items]


def numbers(
    values: Sequence[Any],
    key: str,
    where: Where,
    error: ErrorType,
    path: str | Path | None,
    length: int | None = None,
) -> np.ndarray:
    """Finite float64 numbers, shape (N,) or (N, length); names the first item that is not."""
    array = None
    try:
        if length is None:
            raw = np.asarray(values)
            # [True, 0.8] becomes a float array: a bool is not a score (one C-level pass over the types)
            if raw.dtype.kind in "iuf" and raw.shape == (len(values),) and not set(map(type, values)) & _NOT_NUMBERS:
                array = raw.astype(np.float64, copy=False)
        else:  # two flat passes are ~2x faster than np.asarray on a list of lists
            count = len(values)
            sizes = np.fromiter(map(len, values), dtype=np.int64, count=count)
            # fromiter would turn "1" into 1.0 and True into 1.0: only ints and floats are numbers here
            if np.all(sizes == length) and not set(map(type, chain.from_iterable(values))) & _NOT_NUMBERS:
                flat = np.fromiter(chain.from_iterable(values), dtype=np.float64, count=count * length)
                array = flat.reshape(count, length)
    except (TypeError, ValueError):
        array = None
    if array is None:
        _diagnose(values, key, where, error, path, length)
    finite = np.isfinite(array) if length is None else np.isfinite(array).all(axis=1)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise error(f"{where(index)}: {key} must be finite, got {_short(values[index])}", path)
    return array


#: what np.fromiter would silently convert although it is not a number (JSON gives no other such types)
_NOT_NUMBERS = {str, bool, np.bool_}


def _diagnose(values: Sequence[Any], key: str, where: Where, error: ErrorType, path, length: int | None) -> NoReturn:
    for index, value in enumerate(values):
        if length is None:
            if not _is_number(value):
                raise error(f"{where(index)}: {key} must be a number, got {_short(value)}", path)
        else:
            if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != length:
                size = len(value) if isinstance(value, (list, tuple, np.ndarray)) else type(value).__name__
                raise error(f"{where(index)}: {key} must hold {length} numbers, got {size}", path)
            if not all(_is_number(v) for v in value):
                raise error(f"{where(index)}: {key} must hold numbers only, got {_short(value)}", path)
    raise error(f"{key}: values could not be read as numbers", path)  # pragma: no cover


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_nonnegative_size(boxes: np.ndarray, where: Where, error: ErrorType, path, key: str = "bbox") -> None:
    bad = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise error(f"{where(index)}: {key} has a negative width or height {boxes[index].tolist()}", path)


def unique_ids(ids: Sequence[Any], what: str, error: ErrorType, path) -> None:
    if set(map(type, ids)) == {int}:  # the usual case, checked a column at a time (bools are not ints here)
        try:
            values = np.sort(np.asarray(ids, dtype=np.int64))
        except OverflowError:
            values = None
        if values is not None and not (values[1:] == values[:-1]).any():
            return
    seen: dict[Any, int] = {}
    for index, value in enumerate(ids):
        if not isinstance(value, (int, str, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise error(f"{what} #{index}: id must be an integer or a string, got {_short(value)}", path)
        if value in seen:
            raise error(f"{what} #{index}: duplicate id {value!r} (also {what} #{seen[value]})", path)
        seen[value] = index


class IdIndex:
    """Maps COCO ids (ints or strings) to their rank in sorted order, as pycocotools sorts image/category ids."""

    def __init__(self, ids: Sequence[Any], what: str, error: ErrorType, path) -> None:
        kinds = {isinstance(v, str) for v in ids}
        if len(kinds) > 1:
            raise error(f"{what} ids mix integers and strings", path)
        self.ids: list[Any] = sorted(ids)
        self._lookup = {value: index for index, value in enumerate(self.ids)}
        self._int_ids = np.asarray(self.ids, dtype=np.int64) if self.ids and kinds == {False} else None
        self._table: np.ndarray | None = None  # rank by id - smallest id, when the ids are dense enough

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Index of each value, -1 where unknown."""
        if self._int_ids is not None and isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            return self._lookup_ints(values.astype(np.int64, copy=False))  # a parsed column: no per-item look
        if self._int_ids is not None:
            try:
                raw = np.asarray(values) if not set(map(type, values)) & {bool, np.bool_} else None  # True is not id 1
            except (TypeError, ValueError):
                raw = None
            if raw is not None and raw.dtype.kind == "f" and raw.shape == (len(values),):
                # pycocotools finds image_id 3.0 under 3 (Python dict keys): accept integral floats too
                if np.all(np.abs(raw) < 2.0**63) and np.all(raw == np.round(raw)):  # NaN fails both
                    raw = raw.astype(np.int64)
            if raw is not None and raw.dtype.kind in "iu" and raw.shape == (len(values),):
                return self._lookup_ints(raw.astype(np.int64, copy=False))
        out = np.empty(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            try:
                out[i] = self._lookup.get(value, -1) if not isinstance(value, (bool, np.bool_)) else -1
            except TypeError:  # unhashable
                out[i] = -1
        return out

    def _lookup_ints(self, raw: np.ndarray) -> np.ndarray:
        """``lookup`` of int64 values: a gather from a table by id when the ids span at most
        ``DENSE_LOOKUP_LIMIT`` (COCO image ids span a few hundred thousand: one pass, where a binary search takes
        ~12 steps per value), else a binary search; -1 where unknown.  Both give the same ranks."""
        ids = self._int_ids
        assert ids is not None
        low = min(int(ids[0]), 0) if int(ids[-1]) < DENSE_LOOKUP_LIMIT else int(ids[0])  # from 0: no shift
        span = int(ids[-1]) - low + 1
        if span <= DENSE_LOOKUP_LIMIT:
            if self._table is None:
                self._table = np.full(span, -1, dtype=np.int64)
                self._table[ids - low] = np.arange(len(ids))
            # the difference cannot wrap into [0, span): |raw|, |low| < 2**63 and span < 2**63
            shifted = (raw - low if low else raw).view(np.uint64)
            inside = shifted < span
            if inside.all():
                return self._table[shifted]
            return np.where(inside, self._table[np.where(inside, shifted, 0)], -1)
        index = np.searchsorted(ids, raw)
        clipped = np.minimum(index, len(ids) - 1)
        return np.where(ids[clipped] == raw, clipped, -1)


#: the id range up to which ``IdIndex`` looks integers up in a dense table (8 MiB of int64)
DENSE_LOOKUP_LIMIT = 1 << 20


def check_known(
    index: np.ndarray, values: Sequence[Any], key: str, where: Where, error: ErrorType, path,
    text: str = "is not in the ground truth",
) -> None:
    unknown = index < 0
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise error(f"{where(i)}: {key} {_short(values[i])} {text}", path)
