import json

import numpy as np
import pytest

from harness.core.errors import DataError
from harness.io.jsonio import atomic_write_json, read_json


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    atomic_write_json(path, {"AP": np.float64(0.5), "n": np.int64(3), "v": np.arange(2)})
    atomic_write_json(path, {"AP": 0.75})
    assert json.loads(path.read_text()) == {"AP": 0.75}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_atomic_write_takes_another_temporary_name_on_a_collision(tmp_path, monkeypatch):
    import os
    import stat

    from harness.io import jsonio

    path = tmp_path / "metrics.json"
    taken = tmp_path / f".metrics.json.{(b'x' * 8).hex()}.tmp"
    taken.write_text("someone else's")
    draws = iter([b"x" * 8, b"y" * 8])
    monkeypatch.setattr(jsonio.os, "urandom", lambda n: next(draws))
    atomic_write_json(path, {"AP": 0.5})
    assert json.loads(path.read_text()) == {"AP": 0.5} and taken.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [taken.name, "metrics.json"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


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


def test_what_orjson_refuses_still_parses_as_python_json_does(tmp_path):
    # NaN literals and integers beyond 64 bits are not JSON, but Python's json (and so pycocotools) reads them;
    # the evaluators then name the offending value instead of calling the file malformed
    path = tmp_path / "results.json"
    path.write_text('[{"score": NaN, "image_id": 123456789012345678901234567890}]')
    value = read_json(path)
    assert value[0]["image_id"] == 123456789012345678901234567890 and value[0]["score"] != value[0]["score"]


def test_byte_order_mark_and_bad_utf8_are_one_line_errors(tmp_path):
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf[]")
    with pytest.raises(DataError, match="malformed JSON"):
        read_json(bom)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'["caf\xe9"]')
    with pytest.raises(DataError, match="not UTF-8"):
        read_json(latin)


def test_parsing_leaves_the_garbage_collector_as_it_was(tmp_path):
    import gc

    path = tmp_path / "a.json"
    path.write_text("[1]")
    assert gc.isenabled()
    read_json(path)
    assert gc.isenabled()
    gc.disable()
    try:
        read_json(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


ARRAY_CASES = {
    "empty": "[]",
    "spaces": "  [ ] \n",
    "one": '[{"a":1}]',
    # braces inside strings and nested objects: cuts there do not parse, the next brace is tried
    "nested": '[{"s":{"size":[1,2],"counts":"ab}c"},"x":"}"}, {"b":[1,2]}]',
    "many": json.dumps([{"image_id": i, "s": "}" * (i % 3), "seg": {"c": "x}"}} for i in range(3000)]),
    "escaped": json.dumps([{"s": 'a\\"}' + str(i)} for i in range(500)]),
    "trailing comma": '[{"a":1},]',
    "not an array": '{"a":1}',
    "double comma": '[{"a":1},,{"b":2}]',
    "garbage after": '[{"a":1}] x',
    "nan": '[{"a":1},{"b":NaN},{"c":2}]',
}


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
@pytest.mark.parametrize("piece_bytes", [1, 7, 64, 1 << 20])
def test_array_pieces_concatenate_to_the_whole_parse(tmp_path, case, piece_bytes):
    from harness.io.jsonio import iter_json_array

    path = tmp_path / "results.json"
    path.write_text(ARRAY_CASES[case])
    try:
        whole, error = read_json(path), None
    except DataError as exc:
        whole, error = None, str(exc)
    pieces = []
    try:
        for piece in iter_json_array(path, piece_bytes):
            pieces.append(piece)
    except DataError as exc:
        assert str(exc) == error  # the same one-line message as read_json
        return
    assert error is None
    if isinstance(whole, list):
        flat = [item for piece in pieces for item in piece]
        assert json.dumps(flat) == json.dumps(whole)  # (NaN != NaN, so compare the text)
        if piece_bytes == 1 and len(whole) > 1 and case != "nan":
            assert len(pieces) > 1  # really piece by piece
    else:
        assert pieces == [whole]
