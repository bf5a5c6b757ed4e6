"""Bounds on COCO segmentations before pycocotools' C code sees them, checked a whole column at a time.

pycocotools trusts its input: a polygon coordinate of NaN or 1e12 is cast to ``int`` (undefined behaviour,
a SIGSEGV here) or walked pixel by pixel along a 5x upsampled edge (1e9 -> tens of GB); a compressed RLE whose
counts do not add up to ``h*w`` hangs the decoder or yields areas of 4e9 on a 3072-pixel image; a string that
ends inside a value makes the decoder read past its buffer.  The rules below refuse exactly those inputs and
nothing a well-formed results file contains:

* image sizes: integers in [1, 2**16] with ``h*w < 2**31`` (the C code counts pixels in ``uint``);
* polygons: numbers only (not bool, not strings), finite, ``|v| <= MAX_COORDINATE``, an even count, and a
  rasterisation walk (5x the Chebyshev perimeter, what ``rleFrPoly`` allocates) of at most
  ``MAX_POLYGON_STEPS`` per part, so memory and time stay bounded whatever the file holds;
* compressed RLE strings: characters in the alphabet ``0``..``o``, every value closed within its string and at
  most 7 characters long, every decoded count in [0, 2**32), counts adding up to ``h*w``;
* uncompressed RLE lists: non-negative integers adding up to ``h*w``.

Decoding is vectorised over all strings at once (numpy over the concatenated bytes), so a results file with a
million masks is checked in a few array passes, not a Python loop per character.
"""
from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from harness.core.errors import BenchError

Where = Callable[[int], str]

MAX_SIDE = 1 << 16
MAX_PIXELS = (1 << 31) - 1
#: far outside any image, still exact after pycocotools' ``(int)(5 * v + 0.5)``
MAX_COORDINATE = 1e7
#: steps of pycocotools' polygon walk per part (5 x perimeter in pixels): 2e7 is 160 MB of C arrays
MAX_POLYGON_STEPS = 20_000_000
MAX_VALUE_CHARS = 7
#: what numpy would turn into a number although it is none (JSON gives no other such types; None fails anyway)
_NOT_NUMBERS = {str, bool, np.bool_, bytes}


def check_image_sizes(sizes: np.ndarray, where: Where, error: type[BenchError], path: Any) -> None:
    """(N, 2) heights and widths: positive integers small enough for pycocotools' pixel counters."""
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    bad = ~((sizes >= 1) & (sizes <= MAX_SIDE) & (sizes == np.floor(sizes))).all(axis=1)
    bad |= sizes.prod(axis=1) > MAX_PIXELS
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise error(f"{where(i)}: height and width must be integers in [1, {MAX_SIDE}], got "
                    f"{sizes[i].tolist()}", path)


class PolygonColumns(NamedTuple):
    """Checked polygon segmentations as columns, what the compiled rasteriser takes: item j (segmentation
    ``owners[j]``) is parts ``item_parts[j]`` .. ``item_parts[j + 1] - 1``, part p the x, y values
    ``coords[part_starts[p]:part_starts[p + 1]]``."""

    coords: np.ndarray
    part_starts: np.ndarray
    item_parts: np.ndarray
    owners: np.ndarray
    #: per item: a ``[[x, y, w, h]]`` box, held as the polygon pycocotools rasterises for it
    boxes: np.ndarray | None = None

    def select(self, keep: np.ndarray) -> "PolygonColumns":
        """The items where ``keep`` is True, in order."""
        if keep.all():
            return self
        parts_per_item = np.diff(self.item_parts)
        part_lengths = np.diff(self.part_starts)
        part_keep = np.repeat(keep, parts_per_item)
        coords = self.coords[np.repeat(part_keep, part_lengths)]
        return PolygonColumns(coords, _offsets(part_lengths[part_keep]), _offsets(parts_per_item[keep]),
                              self.owners[keep], None if self.boxes is None else self.boxes[keep])

    def first_part_lengths(self) -> np.ndarray:
        """How many numbers each item's first part holds (pycocotools picks its branch by it)."""
        return np.diff(self.part_starts)[self.item_parts[:-1]]


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def check_polygons(polygons: Sequence[list], owners: Sequence[int], where: Where, error: type[BenchError],
                   path: Any) -> PolygonColumns | None:
    """``polygons[j]`` is the part list of segmentation ``owners[j]`` (each part a flat [x1, y1, x2, ...]).

    Returns the checked values as columns (None when there are no polygons), so the rasteriser reads the numbers
    this check has already converted instead of walking the lists again."""
    if not polygons:
        return None
    parts = list(chain.from_iterable(polygons))
    part_owner = np.repeat(np.asarray(owners, dtype=np.int64), np.fromiter(map(len, polygons), np.int64,
                                                                            len(polygons)))
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    kinds = set(map(type, chain.from_iterable(parts)))
    if kinds & _NOT_NUMBERS:
        for k, part in enumerate(parts):
            if any(type(value) in _NOT_NUMBERS for value in part):
                raise error(f"{where(int(part_owner[k]))}: polygon coordinates must be numbers, got "
                            f"{_short(part)}", path)
    bad_length = (lengths % 2 == 1) | (lengths == 0)
    if bad_length.any():
        k = int(np.flatnonzero(bad_length)[0])
        raise error(f"{where(int(part_owner[k]))}: a polygon needs an even, non-zero number of coordinates, "
                    f"got {int(lengths[k])}", path)
    try:
        flat = np.fromiter(chain.from_iterable(parts), dtype=np.float64, count=int(lengths.sum()))
    except (TypeError, ValueError):  # None, a nested list, ...: name the first part holding one
        for k, part in enumerate(parts):
            try:
                np.asarray(part, dtype=np.float64)
            except (TypeError, ValueError):
                raise error(f"{where(int(part_owner[k]))}: polygon coordinates must be numbers, got "
                            f"{_short(part)}", path) from None
        raise error(f"{where(int(part_owner[0]))}: polygon coordinates must be numbers", path) from None
    except OverflowError:  # an integer beyond float range
        flat = np.array([float("inf")])
        part_of_value = np.zeros(1, dtype=np.int64)
    else:
        part_of_value = np.repeat(np.arange(len(parts)), lengths)
    out = ~(np.abs(flat) <= MAX_COORDINATE)  # NaN compares False: caught here too
    if out.any():
        k = int(part_of_value[np.flatnonzero(out)[0]]) if len(part_of_value) > 1 else _first_bad_part(parts)
        raise error(f"{where(int(part_owner[k]))}: polygon coordinates must be finite and within "
                    f"+-{MAX_COORDINATE:g}, got {_short(parts[k])}", path)
    walk = polygon_walks(flat, lengths)
    long = walk > MAX_POLYGON_STEPS
    if long.any():
        k = int(np.flatnonzero(long)[0])
        raise error(f"{where(int(part_owner[k]))}: polygon perimeter of {walk[k] / 5:.3g} pixels is beyond "
                    f"{MAX_POLYGON_STEPS / 5:.3g} (pycocotools would walk it pixel by pixel)", path)
    parts_per_item = np.fromiter(map(len, polygons), np.int64, len(polygons))
    return PolygonColumns(flat, _offsets(lengths), _offsets(parts_per_item), np.asarray(owners, dtype=np.int64))


def polygon_walks(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per part (``lengths[k]`` values of ``flat`` each, all even and non-zero): 5x its Chebyshev perimeter + 1
    per edge, the steps of pycocotools' walk that ``MAX_POLYGON_STEPS`` bounds."""
    x, y = flat[0::2], flat[1::2]
    points = lengths // 2
    starts = np.concatenate([[0], np.cumsum(points)[:-1]])
    following = np.arange(1, len(x) + 1)
    following[starts + points - 1] = starts
    steps = 5.0 * np.maximum(np.abs(x[following] - x), np.abs(y[following] - y)) + 1.0
    return np.add.reduceat(steps, starts)


def rasterisable_polygons(flat: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether parts of already-parsed numbers (``lengths[k]`` values of ``flat`` each) pass ``check_polygons``
    and are each rasterised by pycocotools as a polygon (at least 6 numbers: no ``[[x, y, w, h]]`` box, no
    short-part branch).  The compiled ground-truth parser's fast path asks this; False sends the file to the
    general reader, which names the problem."""
    if not len(lengths):
        return True
    if ((lengths < 6) | (lengths % 2 == 1)).any() or not (np.abs(flat) <= MAX_COORDINATE).all():
        return False
    return bool((polygon_walks(flat, lengths) <= MAX_POLYGON_STEPS).all())


def _first_bad_part(parts: Sequence[list]) -> int:
    for k, part in enumerate(parts):
        try:
            if not all(abs(float(v)) <= MAX_COORDINATE for v in part):
                return k
        except OverflowError:
            return k
    return 0  # pragma: no cover


def check_compressed_rles(counts: Sequence[Any], pixels: np.ndarray, where: Where, error: type[BenchError],
                          path: Any, indices: Sequence[int] | None = None) -> None:
    """Compressed COCO RLE strings whose counts must add up to ``pixels[i]`` (= h*w of the image)."""
    n = len(counts)
    if n == 0:
        return
    name = (lambda i: where(int(indices[i]))) if indices is not None else where
    try:
        if set(map(type, counts)) <= {str}:
            joined = "".join(counts).encode("ascii")
        else:
            joined = b"".join(c.encode("ascii") if isinstance(c, str) else bytes(c) for c in counts)
        lengths = np.fromiter(map(len, counts), dtype=np.int64, count=n)
        if int(lengths.sum()) != len(joined):
            raise UnicodeError
    except (UnicodeError, TypeError):
        for i, value in enumerate(counts):
            try:
                value.encode("ascii") if isinstance(value, str) else bytes(value)
            except (UnicodeError, TypeError, AttributeError):
                raise error(f"{name(i)}: RLE counts must be an ASCII string", path) from None
        raise error("RLE counts must be ASCII strings", path) from None  # pragma: no cover
    values, rle, problem = decode_counts(joined, lengths)
    if problem is not None:
        i, message = problem
        raise error(f"{name(i)}: {message}", path)
    totals = np.zeros(n, dtype=np.int64)
    if len(values):
        starts = np.flatnonzero(np.concatenate([[True], rle[1:] != rle[:-1]]))
        totals[rle[starts]] = np.add.reduceat(values, starts)
    expected = np.asarray(pixels, dtype=np.float64).reshape(-1)
    wrong = totals != expected
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise error(f"{name(i)}: RLE counts add up to {int(totals[i])} pixels, the mask size holds "
                    f"{int(expected[i])}", path)


def decode_counts(joined: bytes, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, str] | None]:
    """Run lengths of concatenated compressed RLE strings (``lengths`` characters each), as pycocotools'
    ``rleFrString`` computes them, and the string each belongs to; or the first problem ``(string, message)``.

    Works on pieces of about ``DECODE_PIECE_CHARS`` characters (whole strings each), so the temporary arrays
    stay small and a file with millions of masks costs time linear in its size.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    ends = np.cumsum(lengths)
    values, owners = [], []
    first = 0
    while first < n:
        begin = int(ends[first - 1]) if first else 0
        last = int(np.searchsorted(ends, begin + DECODE_PIECE_CHARS, side="right"))
        last = max(last, first + 1)
        piece_end = int(ends[last - 1])
        got, owner, problem = _decode_piece(joined[begin:piece_end], lengths[first:last])
        if problem is not None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), (problem[0] + first, problem[1])
        values.append(got)
        owners.append(owner + first)
        first = last
    if not values:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), None
    return np.concatenate(values), np.concatenate(owners), None


DECODE_PIECE_CHARS = 1 << 22


def _decode_piece(joined: bytes, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, str] | None]:
    n = len(lengths)
    empty = np.zeros(0, dtype=np.int64)
    code = np.frombuffer(joined, dtype=np.uint8) - np.uint8(48)  # wraps below '0': one compare finds both ends
    char_ends = np.cumsum(lengths) - 1
    if (code > 63).any():
        owner = int(np.searchsorted(char_ends, np.flatnonzero(code > 63)[0]))
        return empty, empty, (owner, "RLE counts hold a character outside the COCO alphabet")
    closes = code < 32  # bit 0x20 clear: the last character of a value
    nonempty = lengths > 0
    open_end = np.zeros(n, dtype=bool)
    open_end[nonempty] = ~closes[char_ends[nonempty]]
    if open_end.any():
        return empty, empty, (int(np.flatnonzero(open_end)[0]), "RLE counts end inside a value (truncated string)")
    ends = np.flatnonzero(closes)
    if not len(ends):
        return empty, empty, None
    per_string = np.diff(np.searchsorted(ends, np.concatenate([[0], char_ends + 1])))
    value_lengths = np.diff(ends, prepend=-1)
    rle = np.repeat(np.arange(n), per_string)
    too_long = np.flatnonzero(value_lengths > MAX_VALUE_CHARS)
    if len(too_long):
        return empty, empty, (int(rle[too_long[0]]), f"RLE counts hold a value longer than {MAX_VALUE_CHARS} characters")
    top = code[ends]
    x = (top & np.uint8(0x1F)).astype(np.int64)
    longer = np.flatnonzero(value_lengths > 1)
    if len(longer):  # most values are one or two characters: rebuild the others from their first character
        lengths_l = value_lengths[longer]
        starts_l = ends[longer] - lengths_l + 1
        rebuilt = (code[starts_l] & np.uint8(0x1F)).astype(np.int64)
        for k in range(1, int(lengths_l.max())):
            has = np.flatnonzero(lengths_l > k)
            rebuilt[has] |= (code[starts_l[has] + k] & np.uint8(0x1F)).astype(np.int64) << (5 * k)
        x[longer] = rebuilt
    # a sign bit in the last character: x | (-1 << 5L), which for x < 2**5L is x - 2**5L (no fancy indexing)
    x -= ((top & np.uint8(0x10)) != 0) * np.left_shift(np.int64(1), 5 * value_lengths)
    first_value = np.concatenate([[0], np.cumsum(per_string)[:-1]])
    m = np.arange(len(ends)) - first_value[rle]
    # rleFrString: counts[m] = x[m] + counts[m - 2] for m > 2, so odd counts are running sums of the odd x
    # and even counts (from m = 2 on) running sums of the even x; count 0 is x[0] alone
    odd = (m & 1).astype(bool)
    even_tail = ~odd & (m > 0)
    odd_sums = np.cumsum(np.where(odd, x, 0))
    even_sums = np.cumsum(np.where(even_tail, x, 0))
    before = first_value - 1
    odd_base = np.where(before >= 0, odd_sums[np.maximum(before, 0)], 0)
    even_base = np.where(before >= 0, even_sums[np.maximum(before, 0)], 0)
    values = np.where(odd, odd_sums - odd_base[rle], np.where(even_tail, even_sums - even_base[rle], x))
    bad_value = (values < 0) | (values >= (1 << 32))
    if bad_value.any():
        return empty, empty, (int(rle[np.flatnonzero(bad_value)[0]]),
                              "RLE counts decode to a negative or out-of-range run length")
    return values, rle, None

def check_uncompressed_rle(counts: Any, pixels: int, where: str, error: type[BenchError], path: Any) -> None:
    if (isinstance(counts, list) and counts and set(map(type, counts)) == {int}  # the usual case, at C speed
            and min(counts) >= 0 and max(counts) < (1 << 32) and sum(counts) == pixels):
        return
    if not isinstance(counts, list) or not all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_))
                                               for c in counts):
        raise error(f"{where}: uncompressed RLE counts must be a list of integers", path)
    if any(c < 0 or c >= (1 << 32) for c in counts) or sum(counts) != pixels:
        raise error(f"{where}: RLE counts must be non-negative and add up to {pixels} pixels "
                    f"(got {sum(counts) if counts else 0})", path)


def check_segmentations(segmentations: Sequence[Any], image_index: np.ndarray, image_sizes: np.ndarray,
                        where: Where, error: type[BenchError], path: Any) -> PolygonColumns | None:
    """Every polygon and RLE of a segmentation column, before any of them reaches pycocotools.

    Items of another shape are left to the caller, which names them with its own message.  Returns the checked
    polygons as columns (``[[x, y, w, h]]`` boxes among them as the polygon pycocotools rasterises), or None.
    """
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    # images that hold a segmentation (np.unique would import numpy.ma, which `bench eval` keeps out)
    used = (np.flatnonzero(np.bincount(np.asarray(image_index, dtype=np.int64), minlength=len(sizes)))
            if len(segmentations) else np.zeros(0, np.int64))
    check_image_sizes(sizes[used], lambda k: f"image of {where(int(np.flatnonzero(image_index == used[k])[0]))}",
                      error, path)
    polygons, owners, boxes, strings, string_owners = [], [], [], [], []
    is_list = [isinstance(segm, list) for segm in segmentations]
    lists = [segm for segm, listed in zip(segmentations, is_list) if listed]
    # every list item a non-empty list of lists, none of them a [[x, y, w, h]] box (rare: those keep the loop,
    # which names problems in item order): the polygons are taken a column at a time
    plain = _plain_polygon_lists(lists) and not (
        (np.fromiter(map(len, lists), np.int64, len(lists)) == 1)
        & (np.fromiter(map(len, map(itemgetter(0), lists)), np.int64, len(lists)) == 4)).any()
    for i in [i for i, listed in enumerate(is_list) if not listed] if plain else range(len(segmentations)):
        segm = segmentations[i]
        if isinstance(segm, list):
            if segm and all(isinstance(part, list) for part in segm) and not (len(segm) == 1 and len(segm[0]) == 4):
                polygons.append(segm)
                owners.append(i)
                boxes.append(False)
            elif segm and all(isinstance(part, list) for part in segm):  # [[x, y, w, h]]: rasterised as a box
                polygons.append([_box_polygon(segm[0], where(i), error, path)])
                owners.append(i)
                boxes.append(True)
        elif not isinstance(segm, dict) or not _size_matches(segm.get("size"), sizes[image_index[i]]):
            continue  # the caller names a missing or different mask size
        elif isinstance(segm.get("counts"), (str, bytes)):
            strings.append(segm["counts"])
            string_owners.append(i)
        elif isinstance(segm.get("counts"), list):
            h, w = sizes[image_index[i]]
            check_uncompressed_rle(segm["counts"], int(h * w), where(i), error, path)
    if plain and lists:
        owners = [i for i, listed in enumerate(is_list) if listed]
        polygons, boxes = lists, [False] * len(lists)
    columns = check_polygons(polygons, owners, where, error, path)
    if columns is not None:
        columns = columns._replace(boxes=np.asarray(boxes, dtype=bool))
    if strings:
        owner = np.asarray(string_owners, dtype=np.int64)
        pixels = sizes[np.asarray(image_index, dtype=np.int64)[owner]].prod(axis=1)
        check_compressed_rles(strings, pixels, where, error, path, indices=string_owners)
    return columns


def _plain_polygon_lists(lists: list[list]) -> bool:
    """Whether every item is a non-empty list of lists, decided a column at a time (map and set run in C)."""
    return (not lists or min(map(len, lists)) > 0) and set(map(type, chain.from_iterable(lists))) <= {list}


def _size_matches(size: Any, expected: np.ndarray) -> bool:
    return (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in size)
            and [float(size[0]), float(size[1])] == [float(expected[0]), float(expected[1])])


def _box_polygon(box: list, where: str, error: type[BenchError], path: Any) -> list:
    """pycocotools rasterises ``[[x, y, w, h]]`` as the polygon of that box."""
    if any(type(v) in _NOT_NUMBERS or v is None for v in box):
        raise error(f"{where}: a [[x, y, w, h]] segmentation must hold numbers, got {_short(box)}", path)
    x, y, w, h = box
    return [x, y, x, y + h, x + w, y + h, x + w, y]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
