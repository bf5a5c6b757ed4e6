"""The fast entry of ``bench eval`` (``harness.cli.early.run_fast_eval``): the plain ``eval --task T --gt G --pred P
[--json J]`` is scored without importing click, with exactly the output, errors and exit codes of the click
command; every other command line goes to click."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import early, main
from harness.cli.eval_files import FILE_OPTIONS
from harness.metrics.coco import synthetic

ROOT = Path(__file__).resolve().parents[2]
COCO = ROOT / "tests" / "data" / "coco"
COCO_GT = COCO / "instances_val2014_100.json"
COCO_BBOX = COCO / "instances_val2014_fakebbox100_results.json"

#: runs ``harness.cli`` as ``python -m`` does, and says on stderr whether click was imported (in an atexit
#: handler: the fast entry runs them before it exits)
PROBE = ("import atexit, sys; atexit.register(lambda: sys.stderr.write('click imported: %s' % ('click' in "
         "sys.modules))); sys.argv = ['-m', *sys.argv[1:]]; sys.orig_argv = [sys.executable, '-m', 'harness.cli', "
         "*sys.argv[1:]]; import harness.cli, runpy; runpy.run_module('harness.cli', run_name='__main__')")


def test_fast_eval_args_takes_only_the_plain_command_line() -> None:
    assert early.fast_eval_args(["eval", "--task", "keypoints", "--gt", "g", "--pred=p", "--json", "o"]) == {
        "--task": "keypoints", "--gt": "g", "--pred": "p", "--json": "o"}
    assert early.fast_eval_args(["eval", "--pred", "p", "--gt=g=h", "--task", "detection"]) == {
        "--pred": "p", "--gt": "g=h", "--task": "detection"}
    for args in (
        ["eval", "--task", "keypoints", "--gt", "g"],  # no --pred: click says what is missing
        ["eval", "--task", "keypoints", "--gt", "g", "--pred", "p", "--dialect", "mmdet"],
        ["eval", "--task", "keypoints", "--gt", "g", "--pred", "p", "--help"],
        ["eval", "--task", "keypoints", "--gt", "g", "--gt", "h", "--pred", "p"],  # repeated
        ["eval", "--task", "keypoints", "--gt", "--pred", "p"],  # click would take "--pred" as the file name
        ["eval", "--task", "keypoints", "--gt", "", "--pred", "p"],
        ["eval", "--task", "keypoints", "--gt", "g", "--pred", "p", "extra"],
        ["eval", "--task", "keypoints", "--gt", "g", "--pred"],
        ["eval", "--task", "keypoints", "-h"],
        ["run", "--task", "keypoints", "--gt", "g", "--pred", "p"],
        ["eval"],
        [],
    ):
        assert early.fast_eval_args(args) is None, args


def test_file_options_are_the_click_commands() -> None:
    from harness.cli.eval import eval_command

    named = {"task_name", "gt_path", "pred_path", "run_dir", "dataset_name", "data_root", "limit", "submission",
             "dialect", "json_out"}
    assert tuple(p.name for p in eval_command.params if p.name not in named) == FILE_OPTIONS
    flags = {p.name for p in eval_command.params if getattr(p, "is_flag", False)}
    assert flags == {"reduce_zero_label", "allow_missing"}  # passed as False by the fast entry, as click does


def test_other_processes_and_completion_requests_are_left_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["eval", "--task", "keypoints", "--gt", "g", "--pred", "p"]
    early.run_fast_eval(["/usr/bin/pytest", *args])  # returns: not the bench command
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "harness.cli.other", *args])
    early.run_fast_eval(["-m", *args])  # returns: `python -m` of another module imports harness.cli too
    assert early.invoked_as_cli(["-m"], ["python", "-X", "importtime", "-mharness.cli", "eval"])
    assert not early.invoked_as_cli(["-m"], ["python", "-c", "..."])
    monkeypatch.setenv("_BENCH_COMPLETE", "bash_complete")
    early.run_fast_eval(["bench", *args])  # returns: click answers completion requests


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    gt, results = synthetic.synthetic_keypoints(5, num_images=30)
    paths = {"gt": tmp_path / "gt.json", "pred": tmp_path / "pred.json", "bad": tmp_path / "bad.json",
             "broken": tmp_path / "broken.json"}
    paths["gt"].write_text(json.dumps(gt))
    paths["pred"].write_text(json.dumps(results))
    results[3]["score"] = None
    paths["bad"].write_text(json.dumps(results))
    paths["broken"].write_text("[{")
    (tmp_path / "folder").mkdir()
    return paths


@pytest.mark.parametrize("case, expected_code", [
    ("good", 0), ("good-json", 0), ("detection", 0), ("bad-score", 2), ("broken-json", 2), ("missing-gt", 2),
    ("json-is-a-folder", 2), ("unknown-task", 2), ("semantic-on-files", 2),
])
def test_fast_entry_prints_what_the_click_command_prints(tmp_path: Path, files, case: str, expected_code: int
                                                        ) -> None:
    gt, pred = files["gt"], files["pred"]
    task, extra = "keypoints", []
    if case == "good-json":
        extra = ["--json", str(tmp_path / "out.json")]
    elif case == "detection":
        task, gt, pred = "detection", COCO_GT, COCO_BBOX
    elif case == "bad-score":
        pred = files["bad"]
    elif case == "broken-json":
        pred = files["broken"]
    elif case == "missing-gt":
        gt = tmp_path / "missing.json"
    elif case == "json-is-a-folder":
        extra = ["--json", str(tmp_path / "folder")]
    elif case == "unknown-task":
        task = "keypoint"
    elif case == "semantic-on-files":
        task = "semantic"
    args = ["eval", "--task", task, "--gt", str(gt), "--pred", str(pred), *extra]
    assert early.fast_eval_args(args) is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fast = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=tmp_path)
    out_json = tmp_path / "out.json"
    fast_record = json.loads(out_json.read_text()) if out_json.exists() else None
    if out_json.exists():
        out_json.unlink()
    slow = CliRunner().invoke(main, args)  # in-process: the click command
    assert fast.returncode == slow.exit_code == expected_code, (fast.stderr, slow.output)
    assert fast.stdout == slow.stdout
    fast_err, _, probe = fast.stderr.rpartition("click imported: ")
    assert fast_err == slow.stderr
    # the fast entry ran: click only for printing an error line
    assert probe == str(expected_code != 0)
    if expected_code:
        assert len(slow.stderr.strip().splitlines()) == 1 and slow.stderr.startswith("error: ")
    if case == "good-json":
        assert fast_record == json.loads(out_json.read_text())
        assert fast_record["metrics"]["AP"] >= 0


def test_python_m_and_the_console_script_name_take_the_fast_entry(tmp_path: Path, files) -> None:
    args = ["eval", "--task", "keypoints", "--gt", str(files["gt"]), "--pred", str(files["pred"])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    plain = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env,
                           cwd=tmp_path)
    script = ("import atexit, sys; atexit.register(lambda: sys.stderr.write(str('click' in sys.modules))); "
              "sys.argv = ['/venv/bin/bench', *sys.argv[1:]]; from harness.cli import main; sys.exit(main())")
    as_bench = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path)
    assert plain.returncode == as_bench.returncode == 0, (plain.stderr, as_bench.stderr)
    assert plain.stdout == as_bench.stdout and "AP" in plain.stdout
    assert as_bench.stderr == "False"


@pytest.mark.parametrize("code", [0, 2])
def test_the_fast_exit_keeps_atexit_handlers_buffered_output_and_threads(tmp_path: Path, code: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ("import atexit, sys, threading, time; from harness.cli import early; "
              "atexit.register(lambda: print('handler ran')); print('buffered', end=''); "
              "sys.stderr.write('err'); early._exit(int(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", script, str(code)], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (code, "bufferedhandler ran\n", "err")
    # a thread that is not a daemon is waited for, as at a normal exit
    script = ("import sys, threading, time; from harness.cli import early; "
              "threading.Thread(target=lambda: (time.sleep(0.3), print('thread finished'))).start(); "
              "early._exit(int(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", script, str(code)], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert (done.returncode, done.stdout) == (code, "thread finished\n")
