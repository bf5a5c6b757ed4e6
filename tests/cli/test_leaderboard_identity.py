"""Issue 12 item 5: a leaderboard row is one model's run on one copy of the data under one set of conditions.

`--checkpoint other.pt` never replaces the official row; another data root, an annotation file, model arguments
each get their own row; `--limit` runs never reach the board; re-running the official model replaces its row.
The checkpoint digest, the data and the conditions are columns of every row (and of the site's rows)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.publish.identity import identity_of
from harness.publish.leaderboard import update_leaderboard

ROOT = Path(__file__).resolve().parents[2]
KEYPOINTS = ROOT / "tests" / "data" / "coco-keypoints"
SHIPPED = ROOT / "adapters" / "weights" / "keypoints_mean-pose.pt"


def run(boards: Path, reports: Path, *args: str):
    return CliRunner().invoke(main, ["run", "--task", "keypoints", "--model", "mean-pose", "--bootstrap", "0",
                                     "--gallery", "0", "--no-cache", "--reports-dir", str(reports),
                                     "--leaderboards-dir", str(boards), *args], catch_exceptions=False)


def board(boards: Path) -> pd.DataFrame:
    return pd.read_csv(boards / "keypoints.csv", dtype=str, keep_default_na=False)


def coco_copy(where: Path) -> Path:
    """The COCO keypoint fixture arranged as a COCO download (annotations/ + val2017/)."""
    (where / "annotations").mkdir(parents=True)
    shutil.copy(KEYPOINTS / "test_coco.json", where / "annotations" / "person_keypoints_val2017.json")
    (where / "val2017").mkdir()
    for image in KEYPOINTS.glob("*.jpg"):
        shutil.copy(image, where / "val2017" / image.name)
    return where


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """One official full run (the mean-pose model's shipped weights on the embedded data) on a fresh board."""
    tmp = tmp_path_factory.mktemp("official")
    result = run(tmp / "boards", tmp / "reports")
    assert result.exit_code == 0, result.output
    record = json.loads(next((tmp / "reports").glob("*/metrics.json")).read_text())
    return tmp, record


def copy_board(official, tmp_path: Path) -> tuple[Path, Path]:
    source, _ = official
    shutil.copytree(source / "boards", tmp_path / "boards")
    return tmp_path / "boards", tmp_path / "reports"


def test_official_row_shows_checkpoint_digest_data_and_conditions(official):
    tmp, record = official
    table = board(tmp / "boards")
    assert len(table) == 1
    row = table.iloc[0]
    from harness.core.fingerprint import file_digest

    assert row["identity"] == "" and row["model"] == "mean-pose"
    assert row["checkpoint"] == f"{SHIPPED.name}@{file_digest(SHIPPED)[:8]}"
    assert row["data"] == "embedded"
    assert row["conditions"] == "maxDets 20 · fp32 · gt-boxes" and "maxDets 20" in row["conditions"] and "gt-boxes" in row["conditions"]
    html = (tmp / "boards" / "keypoints.html").read_text()
    assert row["checkpoint"] in html and ">checkpoint<" in html and ">conditions<" in html


def test_another_checkpoint_never_replaces_the_official_row(official, tmp_path):
    boards, reports = copy_board(official, tmp_path)
    before = board(boards).iloc[0].to_dict()
    other = tmp_path / "other.pt"
    shutil.copy(SHIPPED, other)  # even the same bytes: the user's file is not the model's official weights
    for _ in range(2):  # the second run replaces the first run's row, not the official one
        result = run(boards, reports, "--checkpoint", str(other))
        assert result.exit_code == 0, result.output
    table = board(boards)
    assert len(table) == 2 and sorted(table["model"]) == ["mean-pose", "mean-pose"]
    assert table[table["identity"] == ""].iloc[0].to_dict() == before  # untouched, run id and all
    mine = table[table["identity"] != ""].iloc[0]
    assert mine["checkpoint"].startswith("other.pt@") and mine["run_id"] != before["run_id"]
    # re-running the official model replaces the official row only
    assert run(boards, reports).exit_code == 0
    table = board(boards)
    assert len(table) == 2 and table[table["identity"] == ""].iloc[0]["run_id"] != before["run_id"]


def test_other_copies_of_a_dataset_and_a_limit_never_share_a_row(official, tmp_path):
    boards, reports = copy_board(official, tmp_path)
    first, second = coco_copy(tmp_path / "copy-a"), coco_copy(tmp_path / "copy-b")
    for root in (first, second, first):
        result = run(boards, reports, "--dataset", "coco", "--data-root", str(root))
        assert result.exit_code == 0, result.output
    assert run(boards, reports, "--limit", "5").exit_code == 0  # a subset: never on the board
    table = board(boards)
    coco = table[table["dataset"] == "coco"]
    assert len(table) == 3 and len(coco) == 2  # the official row and one per data copy (copy-a replaced itself)
    assert len(set(coco["identity"])) == 2 and "" not in set(coco["identity"])
    assert {Path(d.split("@")[0]).name for d in coco["data"]} == {"copy-a", "copy-b"}
    assert table[table["identity"] == ""].iloc[0]["samples"] == str(official[1]["samples"]) != "5"


def test_model_arguments_get_their_own_row(official, tmp_path):
    boards, reports = copy_board(official, tmp_path)
    result = run(boards, reports, "--model-arg", "threads=2")
    assert result.exit_code == 0, result.output
    table = board(boards)
    assert len(table) == 2
    assert "arg threads=2" in table[table["identity"] != ""].iloc[0]["conditions"]


def test_a_table_written_before_identities_keeps_its_official_rows(official, tmp_path):
    """Committed leaderboards have no identity column: their rows are the official ones and are replaced."""
    _, record = official
    boards = tmp_path / "boards"
    boards.mkdir()
    old = pd.DataFrame([{"dataset": record["dataset"]["name"], "protocol": record["protocol"]["key"],
                         "model": "mean-pose", "AP": 0.1, "samples": 160, "run_id": "old"},
                        {"dataset": record["dataset"]["name"], "protocol": record["protocol"]["key"],
                         "model": "heatmap", "AP": 0.2, "samples": 160, "run_id": "kept"}])
    old.to_csv(boards / "keypoints.csv", index=False)
    update_leaderboard(boards, "keypoints", record, ("AP",), "AP", True)
    table = board(boards)
    assert sorted(table["run_id"]) == sorted([record["run_id"], "kept"])
    other = {**record, "identity": {**record["identity"], "checkpoint": {
        **record["identity"]["checkpoint"], "user": True}}, "run_id": "mine"}
    update_leaderboard(boards, "keypoints", other, ("AP",), "AP", True)
    assert sorted(board(boards)["run_id"]) == sorted([record["run_id"], "kept", "mine"])


def test_identity_keys(official):
    _, record = official
    assert identity_of(record).official and identity_of({**record, "identity": {}}).official
    user = {**record, "identity": {**record["identity"], "checkpoint": {"file": "x.pt", "sha256": "ab" * 32,
                                                                         "user": True}}}
    copied = {**record, "identity": {**record["identity"], "data": {"root": "/data/coco", "fingerprint": "f" * 16}}}
    keys = {identity_of(user).key, identity_of(copied).key}
    assert len(keys) == 2 and "" not in keys
    assert identity_of(user).label == "x.pt@abababab"


def test_site_rows_keep_identities_apart(official, tmp_path):
    from harness.publish.site import build_site

    boards, reports = copy_board(official, tmp_path)
    shutil.copytree(official[0] / "reports", reports)
    other = tmp_path / "other.pt"
    shutil.copy(SHIPPED, other)
    assert run(boards, reports, "--checkpoint", str(other)).exit_code == 0
    build_site(reports, tmp_path / "site")
    rows = pd.read_csv(tmp_path / "site" / "keypoints.csv", dtype=str, keep_default_na=False)
    assert sorted(rows["model"]) == ["mean-pose", f"mean-pose (other.pt@{rows['checkpoint'].iloc[0][-8:]})"]
    assert set(rows["data"]) == {"embedded"}
    page = (tmp_path / "site" / "keypoints.html").read_text()
    for label, official in zip(rows["checkpoint"], rows["official"]):  # each row says which weights it scored
        weights, digest = label.split("@")
        # the shipped weights: their digest (the model names the file); the user's: file and digest
        shown = f"weights @{digest}" if official == "True" else f"{weights}<wbr>@{digest}"
        assert f'<span class="ci identity">{shown}</span>' in page


def test_the_gate_checks_the_official_run_not_a_newer_one_with_other_weights(official, tmp_path):
    from harness.publish.gate import Baseline, run_gate

    boards, reports = copy_board(official, tmp_path)
    shutil.copytree(official[0] / "reports", reports)
    _, record = official
    other = tmp_path / "other.pt"
    shutil.copy(SHIPPED, other)
    assert run(boards, reports, "--checkpoint", str(other)).exit_code == 0
    assert run(boards, reports, "--model-arg", "threads=2").exit_code == 0
    baseline = Baseline(task="keypoints", dataset=record["dataset"]["name"], model="mean-pose", metric="AP",
                        expected=record["metrics"]["AP"], tolerance=0.0, direction="higher")
    (check,) = run_gate([baseline], reports)
    assert check.run_id == record["run_id"]  # the two newer runs are other models as far as the baseline goes
