"""The issue's crafted results files (finding 3), each run by ``bench eval`` in a child process limited to 2 GiB
of address space and 30 s: exit 2 with one line naming the file and the result, never a SIGSEGV, a hang or
a silent score.  Before the bounds, the polygons crashed pycocotools (SIGSEGV) or ran out of memory and the
RLEs hung or scored areas of 4e9 on a 3072-pixel image."""
from __future__ import annotations

import json

import pytest

from tests.hostile.sandbox import run_bench

GT = {"images": [{"id": 1, "width": 64, "height": 48, "file_name": "a.jpg"}],
      "categories": [{"id": 1, "name": "thing"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 100.0, "bbox": [10, 10, 10, 10],
                       "iscrowd": 0, "segmentation": [[10, 10, 20, 10, 20, 20, 10, 20]]}]}


def result(segmentation) -> str:
    return json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [10, 10, 10, 10],
                        "segmentation": segmentation}])


def mask_only(counts: str, size=(48, 64)) -> str:
    """A result without "bbox": the compiled parser's fast path reads it, and must hand it to the checks."""
    return json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9,
                        "segmentation": {"size": list(size), "counts": counts}}])


CASES = {
    "polygon-nan": ('[{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": [[NaN, 10, 20, 10, 20, 20]]}]',
                    "polygon coordinates must be finite"),
    "polygon-inf": ('[{"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": [[Infinity, 1, 2, 3, 4, 5]]}]',
                    "polygon coordinates must be finite"),
    "polygon-1e9": (result([[0, 0, 1e9, 0, 0, 1e9]]), "polygon coordinates must be finite and within"),
    "polygon-minus-1e12": (result([[0, 0, -1e12, 0, 0, -1e12]]), "polygon coordinates must be finite and within"),
    "polygon-huge-perimeter": (result([[0, 0, 9e6, 0, 9e6, 9e6, 0, 9e6]]), "perimeter"),
    "polygon-zigzag": (result([[v for k in range(2000) for v in ((0, 0) if k % 2 else (5e6, 5e6))]]),
                       "perimeter"),
    "box-huge": (result([[0, 0, 1e12, 1e12]]), "within"),
    "rle-short": (result({"size": [48, 64], "counts": "0"}), "add up to 0 pixels"),
    "rle-too-long": (result({"size": [48, 64], "counts": "0`7"}), "add up to"),
    "rle-negative": (result({"size": [48, 64], "counts": "1O2O"}), "negative or out-of-range"),
    "rle-open-end": (result({"size": [48, 64], "counts": "ZZZZZZZZZZZZ"}), "end inside a value"),
    "rle-long-value": (result({"size": [48, 64], "counts": "ooooooooo0"}), "longer than 7"),
    "rle-alphabet": (result({"size": [48, 64], "counts": "\u007f\u007f"}), "alphabet"),
    "rle-non-ascii": (result({"size": [48, 64], "counts": "é"}), "ASCII|alphabet"),
    "rle-uncompressed-overflow": (result({"size": [48, 64], "counts": [2**40, 3072]}), "add up to|integers"),
    "rle-uncompressed-negative": (result({"size": [48, 64], "counts": [-5, 3077]}), "non-negative"),
    "fast-rle-short": (mask_only("0"), "add up to 0 pixels"),
    "fast-rle-too-long": (mask_only("0`7"), "add up to"),
    "fast-rle-negative": (mask_only("1O2O"), "negative or out-of-range"),
    "fast-rle-open-end": (mask_only("ZZZZZZZZZZZZ"), "end inside a value"),
    "fast-rle-long-value": (mask_only("ooooooooo0"), "longer than 7"),
    "fast-rle-alphabet": (mask_only("\u007f\u007f"), "alphabet"),
    "deep-json": ("[" * 100000 + "]" * 100000, "nested deeper"),
    "id-beyond-int64": (json.dumps([{"image_id": 2**70, "category_id": 1, "score": 0.9, "bbox": [1, 1, 2, 2]}]),
                        "image_id"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_crafted_results_exit_2_with_one_line_in_bounded_memory_and_time(tmp_path, name):
    text, message = CASES[name]
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "pred.json").write_text(text)
    outcome = run_bench(["eval", "--task", "instance", "--gt", "gt.json", "--pred", "pred.json"], cwd=tmp_path)
    assert outcome.code == 2, (outcome.code, outcome.stderr[-2000:])
    [line] = outcome.error_lines
    assert line.startswith("error: pred.json: ")
    assert __import__("re").search(message, line), line
