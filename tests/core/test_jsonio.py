import json

import numpy as np
import pytest

from harness.errors import DataError
from harness.jsonio import atomic_write_json, read_json


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    atomic_write_json(path, {"AP": np.float64(0.5), "n": np.int64(3), "v": np.arange(2)})
    atomic_write_json(path, {"AP": 0.75})
    assert json.loads(path.read_text()) == {"AP": 0.75}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_failed_serialisation_keeps_the_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"AP": 0.5})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"AP": object()})
    assert json.loads(path.read_text()) == {"AP": 0.5}
    assert len(list(tmp_path.iterdir())) == 1


def test_malformed_json_names_file_and_position(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{"images": [1, 2,, 3]}')
    with pytest.raises(DataError) as info:
        read_json(path)
    message = str(info.value)
    assert str(path) in message and "line 1 column" in message and "\n" not in message
