"""``IdIndex.lookup``: every way in (a parsed int64 column, a list of ints, floats, bools, strings) gives the rank
pycocotools' sorted ids give, by the dense table, the binary search and the dict alike."""
from __future__ import annotations

import numpy as np
import pytest

from harness.metrics.coco import validate
from harness.metrics.coco.validate import IdIndex


@pytest.mark.parametrize("ids", [
    list(range(1, 6)),
    [int(i) for i in np.random.default_rng(0).choice(600_000, 3000, replace=False)],  # COCO-like: dense table
    [int(i) for i in np.random.default_rng(1).choice(2**40, 3000, replace=False)],  # wide: binary search
    [-(2**62), -5, 0, 7, 2**62],
])
def test_lookup_equals_the_dict_of_sorted_ids(ids: list[int]) -> None:
    index = IdIndex(ids, "image", ValueError, None)
    rng = np.random.default_rng(2)
    queries = np.concatenate([rng.choice(np.array(ids, dtype=np.int64), 5000), rng.integers(-1000, 2**41, 500),
                              np.array([max(ids) + 1, min(ids) - 1, -(2**63), 2**63 - 1, 0, 1])])
    expected = np.array([index._lookup.get(int(q), -1) for q in queries])
    assert (index.lookup(queries) == expected).all()  # a parsed column
    assert (index.lookup(queries.astype(np.uint64) if min(ids) >= 0 and (queries >= 0).all() else queries)
            == expected).all()
    assert (index.lookup([int(q) for q in queries[:300]]) == expected[:300]).all()  # a list from the general reader
    assert (index.lookup([float(q) for q in queries[:50]]) == expected[:50]).all() or max(ids) > 2**53
    assert list(index.lookup([True, False])) == [-1, -1]  # True is not id 1
    assert index.ids == sorted(ids)


def test_the_dense_table_and_the_binary_search_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [int(i) for i in np.random.default_rng(3).choice(100_000, 2000, replace=False)]
    queries = np.random.default_rng(4).integers(-10, 100_010, 20_000)
    dense = IdIndex(ids, "image", ValueError, None).lookup(queries)
    monkeypatch.setattr(validate, "DENSE_LOOKUP_LIMIT", 0)
    searched = IdIndex(ids, "image", ValueError, None).lookup(queries)
    assert (dense == searched).all() and (dense >= 0).sum() > 100
    inside = queries[(queries >= min(ids)) & (queries <= max(ids))]  # every value in the id range, gaps included
    dense = IdIndex(ids, "image", ValueError, None).lookup(inside)
    expected = np.array([ids.index(q) if q in set(ids) else -1 for q in inside.tolist()])
    ranks = np.argsort(np.argsort(ids))  # file order -> sorted rank
    assert (dense == np.where(expected >= 0, ranks[expected], -1)).all() and (dense == -1).any()
