"""JSON and file writing that never leaves half a file behind, and reading that names the broken file."""
from __future__ import annotations

import gc
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from harness.core.errors import DataError


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it over, so readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_file_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600: reports and leaderboards must be readable by a web server
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_file_beside(path: Path) -> tuple[int, str]:
    """``tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=...)``'s job: a new file (O_EXCL, mode 0600) with
    an unpredictable name beside ``path``.  Not tempfile itself: its import (shutil, random, bz2, lzma) was ~5 ms
    of every `bench eval`, whose whole process is the score; the name pattern (``.*.tmp``) is what
    ``run.run_folders`` cleans up after a killed run."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):  # as mkstemp: another name on the (astronomically rare) collision
        name = str(path.parent / f".{path.name}.{os.urandom(8).hex()}.tmp")
        try:
            return os.open(name, flags | getattr(os, "O_BINARY", 0), 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many containers at once.

    JSON parsing allocates millions of dicts and lists that cannot form cycles; with the collector on, each
    young-generation collection re-scans them, which makes a COCO results file parse about 1.8x slower.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_json(path: str | Path) -> Any:
    """The parsed file; ``DataError`` naming the file (and the line and column) when it is not JSON.

    orjson does the parsing (about 4x the standard library's speed); the standard library takes over for what
    orjson refuses but Python's ``json`` accepts (``NaN``/``Infinity`` literals, integers beyond 64 bits), so
    what parses and what the evaluators then say about it do not depend on which parser ran, and for the
    error message of a file that is not JSON at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    with open(path, "rb") as handle:
        data = handle.read()
    with gc_paused():
        try:
            return _orjson_loads(data)
        except ValueError:
            pass
        try:
            return json.loads(data.decode("utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path) from None
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
        except RecursionError:  # orjson stops at 1024 levels; the standard library at the interpreter's stack
            raise DataError("malformed JSON: nested deeper than the parser's recursion limit", path) from None


def _orjson_loads(data: bytes) -> Any:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency; keep reading files without it
        raise ValueError("orjson is not installed") from None
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark: json.loads refuses it with a clear message
        raise ValueError("byte-order mark")
    return orjson.loads(data)


#: bytes per piece of ``iter_json_array``: large enough that parsing dominates, small enough for the cache
ARRAY_PIECE_BYTES = 1 << 20
_WHITESPACE = b" \t\r\n"


def iter_json_array(path: str | Path, piece_bytes: int = ARRAY_PIECE_BYTES) -> Iterator[Any]:
    """The items of a file holding one JSON array, as consecutive lists of about ``piece_bytes`` of text each.

    A COCO results file is a flat array of small objects; parsing it whole creates every object at once
    (hundreds of MB for a million results) only to turn them into columns.  Here the text is cut after a
    ``}`` near every ``piece_bytes`` and each piece is parsed as an array of its own, so a consumer turns each
    piece into columns and drops it.  A cut is accepted only if the piece parses and is followed by a comma:
    a ``}`` inside a string or a nested object leaves an unterminated string or unbalanced brackets, which
    does not parse, and the next ``}`` is tried.  Anything unusual (not an array, no good cut within a few
    tries, a trailing comma, an orjson refusal) hands the rest to ``read_json``, so what parses and every
    error message are ``read_json``'s.  A file that is not an array is yielded as its single value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is a dependency
        yield read_json(path)
        return
    start = len(data) - len(data.lstrip(_WHITESPACE))
    if not data[start:start + 1] == b"[":
        yield read_json(path)
        return
    position, consumed = start + 1, 0
    while True:
        piece = None
        cut = data.find(b"}", position + piece_bytes)
        for _attempt in range(8):
            if cut < 0:
                break
            try:
                with gc_paused():
                    piece = orjson.loads(b"[" + data[position:cut + 1] + b"]")
            except orjson.JSONDecodeError:
                cut = data.find(b"}", cut + 1)
                continue
            break
        if piece is None:  # the tail (or a stretch without a usable cut): let the full parser finish
            if cut < 0:
                try:
                    with gc_paused():
                        piece = orjson.loads(b"[" + data[position:])
                except orjson.JSONDecodeError:
                    piece = None
                if piece is not None and (piece or consumed == 0):  # "[..., ]" is not JSON: leave it to read_json
                    yield piece
                    return
            rest = read_json(path)
            if isinstance(rest, list) and len(rest) >= consumed:
                yield rest[consumed:]
                return
            raise DataError("malformed JSON: the array changed while it was read", path)  # pragma: no cover
        yield piece
        consumed += len(piece)
        after = cut + 1
        while after < len(data) and data[after] in _WHITESPACE:
            after += 1
        if data[after:after + 1] != b",":
            if data[after:after + 1] == b"]" and not data[after + 1:].strip(_WHITESPACE):
                return
            rest = read_json(path)  # not an array continuation: the full parser says what is wrong
            yield rest[consumed:] if isinstance(rest, list) else rest  # pragma: no cover
            return
        position = after + 1
