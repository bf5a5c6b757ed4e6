"""The keypoint adapters answer ``info()`` without building their network (issue 15): what they report then must
be what the built network has."""
from __future__ import annotations

import pytest

from adapters.inrepo.parameter_count import FOLDER, count_parameters
from harness.core.catalog import ADAPTERS

TOP_DOWN = ["heatmap", "hourglass", "mean-pose", "regression", "soft-argmax"]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    return tmp_path / FOLDER


@pytest.mark.parametrize("name", TOP_DOWN)
def test_input_size_declared_on_the_adapter_is_the_networks(name):
    cls = ADAPTERS.get(name)
    assert cls.input_hw == cls.network_type().input_hw


@pytest.mark.parametrize("name", TOP_DOWN + ["openpose"])
def test_parameter_count_is_counted_once_then_remembered(name, fresh_cache):
    first = ADAPTERS.get(name)(name)
    counted = first.info().parameters  # nothing stored yet: builds the network and counts
    assert first._network is not None and counted == count_parameters(first.network) > 0
    assert len(list(fresh_cache.glob("*.json"))) == 1

    again = ADAPTERS.get(name)(name)
    assert again.info().parameters == counted
    assert again._network is None  # read back, not rebuilt


def test_a_corrupt_or_foreign_count_is_not_trusted(fresh_cache, tmp_path):
    adapter = ADAPTERS.get("heatmap")("heatmap")
    counted = adapter.info().parameters
    (stored,) = fresh_cache.glob("*.json")
    stored.write_text('{"parameters": "many"}')
    fresh = ADAPTERS.get("heatmap")("heatmap")
    assert fresh.info().parameters == counted and fresh._network is not None  # rebuilt and counted again
    assert '"parameters": %d' % counted in stored.read_text()

    # other weights (another file's bytes), another key: the shipped file's count is not reused for them
    import torch

    state = torch.load(adapter.weights_file(), map_location="cpu", weights_only=True)
    state["head.bias"] = state["head.bias"] + 1.0
    other = tmp_path / "other.pt"
    torch.save(state, other)
    retrained = ADAPTERS.get("heatmap")("heatmap", checkpoint=other)
    assert retrained.info().parameters == counted and retrained._network is not None
    assert len(list(fresh_cache.glob("*.json"))) == 2

def test_openpose_limbs_declared_on_the_adapter_are_the_networks(fresh_cache):
    adapter = ADAPTERS.get("openpose")("openpose")
    assert adapter.info().extra["limbs"] == [list(limb) for limb in adapter.network.limbs]
    assert adapter.info().input_size == (192, 256)  # (height, width) of INPUT_WH
