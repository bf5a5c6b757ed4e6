"""Predictions to disk and back without pickle: a JSON tree that names whitelisted dataclasses, plus raw arrays.

Unpickling a cache file would run whatever code its author put there, and cache folders get copied between
machines.  This codec can only ever rebuild plain JSON values, numpy arrays of plain dtypes (raw bytes plus
dtype and shape; object and record dtypes are refused both ways), ``bytes`` (RLE counts) and instances of
dataclasses registered here by name; no pickle is involved anywhere.  Every dataclass in ``harness.core.structures``
is registered; a task with its own prediction type registers it with ``@register_prediction_type``.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import struct
import zlib
from typing import Any, BinaryIO, Callable, TypeVar

import numpy as np

T = TypeVar("T")
_ALLOWED_KINDS = set("biufcmMSU")  # numbers, bools, times, fixed-width strings: never objects or records
_TYPES: dict[str, type] = {}
_ARRAY, _BYTES, _DATACLASS, _TUPLE, _DICT = "__array__", "__bytes__", "__dataclass__", "__tuple__", "__dict__"


class CodecError(ValueError):
    """The value cannot be stored, or a stored tree names something the codec refuses to build."""


def register_prediction_type(cls: type[T]) -> type[T]:
    """Allow ``cls`` (a dataclass) to be stored and rebuilt; its qualified name is what the file records."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    _TYPES[_type_name(cls)] = cls
    return cls


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _register_structures() -> None:
    from harness.core import structures

    for value in vars(structures).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == structures.__name__:
            register_prediction_type(value)


_register_structures()


def encode(value: Any, arrays: list[np.ndarray]) -> Any:
    """A JSON-able tree for ``value``; arrays are appended to ``arrays`` and referenced by position."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.generic):
        return encode(value.item(), arrays)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ALLOWED_KINDS or value.dtype.fields is not None:
            raise CodecError(f"arrays of dtype {value.dtype} (objects, records) cannot be stored; use a numeric dtype")
        arrays.append(np.ascontiguousarray(value))
        return {_ARRAY: len(arrays) - 1}
    if isinstance(value, (bytes, bytearray)):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list):
        return [encode(item, arrays) for item in value]
    if isinstance(value, tuple):
        return {_TUPLE: [encode(item, arrays) for item in value]}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise CodecError("only dicts with string keys can be stored")
        return {_DICT: {key: encode(item, arrays) for key, item in value.items()}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = _type_name(type(value))
        if name not in _TYPES:
            raise CodecError(f"{name} is not a registered prediction type (use @register_prediction_type)")
        fields = {f.name: encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value) if f.init}
        return {_DATACLASS: name, "fields": fields}
    raise CodecError(f"cannot store a value of type {type(value).__name__}")


def decode(tree: Any, arrays: Callable[[int], np.ndarray]) -> Any:
    """Rebuild what ``encode`` stored; ``arrays(i)`` returns the i-th stored array."""
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [decode(item, arrays) for item in tree]
    if not isinstance(tree, dict) or len(tree) not in (1, 2):
        raise CodecError("malformed entry in stored predictions")
    if _ARRAY in tree:
        return arrays(int(tree[_ARRAY]))
    if _BYTES in tree:
        return base64.b64decode(tree[_BYTES])
    if _TUPLE in tree:
        return tuple(decode(item, arrays) for item in tree[_TUPLE])
    if _DICT in tree:
        return {key: decode(item, arrays) for key, item in tree[_DICT].items()}
    if _DATACLASS in tree:
        cls = _TYPES.get(tree[_DATACLASS])
        if cls is None:
            raise CodecError(f"stored type {tree[_DATACLASS]!r} is not a registered prediction type")
        return cls(**{key: decode(item, arrays) for key, item in tree["fields"].items()})
    raise CodecError("malformed entry in stored predictions")


MAGIC = b"BENCHPRED1\n"


def dumps(header: dict[str, Any], values: list[Any], level: int = 1) -> bytes:
    """``header`` and ``values`` as one blob: magic, JSON length, JSON, zlib-compressed concatenated array bytes.

    One compressed buffer instead of one archive member per array keeps a chunk of a few hundred small arrays
    cheap to write and read; zlib level 1 shrinks label maps several-fold at little cost.
    """
    arrays: list[np.ndarray] = []
    trees = [encode(value, arrays) for value in values]
    layout, offset = [], 0
    for array in arrays:
        layout.append({"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset})
        offset += array.nbytes
    meta = json.dumps({"header": header, "values": trees, "arrays": layout}, allow_nan=True).encode("utf-8")
    payload = zlib.compress(b"".join(array.tobytes() for array in arrays), level)
    return MAGIC + struct.pack("<Q", len(meta)) + meta + payload


def _read_meta(handle: BinaryIO) -> dict[str, Any]:
    if handle.read(len(MAGIC)) != MAGIC:
        raise CodecError("not a bench prediction file")
    (length,) = struct.unpack("<Q", handle.read(8))
    raw = handle.read(length)
    if len(raw) != length:
        raise CodecError("truncated prediction file")
    return json.loads(raw.decode("utf-8"))


def _open(source: Any) -> BinaryIO:
    return source if hasattr(source, "read") else open(source, "rb")


def read_header(source: Any) -> dict[str, Any]:
    """Only the header of a file written by ``dumps`` (cheap: the arrays are not read)."""
    handle = _open(source)
    try:
        return _read_meta(handle)["header"]
    finally:
        if handle is not source:
            handle.close()


def loads(source: Any) -> tuple[dict[str, Any], list[Any]]:
    """Header and values of a file written by ``dumps``; ``source`` is a path or a binary file object."""
    handle = _open(source)
    try:
        meta = _read_meta(handle)
        try:
            payload = zlib.decompress(handle.read())
        except zlib.error as exc:
            raise CodecError(f"damaged array data ({exc})") from None
    finally:
        if handle is not source:
            handle.close()
    arrays = [_array(entry, payload) for entry in meta["arrays"]]
    values = [decode(tree, lambda i: arrays[i]) for tree in meta["values"]]
    return meta["header"], values


def _array(entry: dict[str, Any], payload: bytes) -> np.ndarray:
    try:
        dtype = np.dtype(str(entry["dtype"]))
    except TypeError:
        raise CodecError(f"unknown dtype {entry['dtype']!r}") from None
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None:
        raise CodecError(f"refusing stored dtype {entry['dtype']!r}")
    shape = tuple(int(n) for n in entry["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    start = int(entry["offset"])
    end = start + count * dtype.itemsize
    if start < 0 or end > len(payload):
        raise CodecError("array data out of range")
    return np.frombuffer(payload, dtype=dtype, count=count, offset=start).reshape(shape).copy()
