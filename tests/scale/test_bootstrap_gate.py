"""Bootstrap intervals over images, and the gate that uses them: a regressed checkpoint fails, the original passes."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import toyplugin
from harness.run.bench_run import RunConfig, run_models
from harness.cli import main
from harness.run.confidence import confidence_intervals
from harness.publish.gate import load_baselines, run_gate


def filled_accuracy(labels, scores) -> toyplugin.ToyAccuracy:
    metric = toyplugin.ToyAccuracy()
    samples = [toyplugin.Sample(sample_id=i, image_path=None, target=toyplugin.ToyTarget(l)) for i, l in enumerate(labels)]
    metric.update(samples, [toyplugin.ToyPrediction(np.asarray(s)) for s in scores])
    return metric


@settings(max_examples=30, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 2), st.lists(st.floats(0, 1), min_size=3, max_size=3)), min_size=1, max_size=30),
       picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=40))
def test_subset_equals_scoring_exactly_those_samples(data, picks):
    labels, scores = [d[0] for d in data], [d[1] for d in data]
    positions = np.array([p % len(data) for p in picks])
    subset = filled_accuracy(labels, scores).subset(positions, len(data)).compute()
    direct = filled_accuracy([labels[p] for p in positions], [scores[p] for p in positions]).compute()
    assert subset.metrics == pytest.approx(direct.metrics, nan_ok=True, abs=0, rel=0)


def test_intervals_are_seeded_bracket_the_estimate_and_skip_sum_states():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 80).tolist()
    scores = rng.dirichlet([1, 1, 1], 80).tolist()
    accuracy, confusion = filled_accuracy(labels, scores), toyplugin.ToyConfusion()
    first, settings_ = confidence_intervals([accuracy, confusion], 80, 100, seed=3)
    again, _ = confidence_intervals([accuracy, confusion], 80, 100, seed=3)
    other, _ = confidence_intervals([accuracy, confusion], 80, 100, seed=4)
    assert first == again and first != other
    estimate = accuracy.compute().metrics["accuracy"]
    lo, hi = first["accuracy"]
    assert lo < estimate < hi and 0.05 < hi - lo < 0.5
    assert settings_["unsupported"] == ["toy_confusion"] and settings_["n_resamples"] == 100
    assert confidence_intervals([accuracy], 80, 0, seed=3)[0] == {}
    with pytest.raises(NotImplementedError, match="per sample"):
        accuracy.subset(np.arange(3), 81)  # 'cat' lists that are not one entry per sample


def write_baselines(path, limit=None):
    entries = [{"task": "toy", "dataset": "toy-set", "model": "toy-linear", "metric": m, "expected": 0.0,
                "tolerance": 0.01, "direction": d} for m, d in (("accuracy", "higher"), ("brier", "lower"))]
    path.write_text("# toy baselines\n# keep this comment\n" + yaml.safe_dump({"baselines": entries}))
    return path


def test_regressed_checkpoint_fails_the_gate_and_the_original_passes(tmp_path):
    config = RunConfig(task="toy", models=("toy-linear",), batch_size=16, reports_dir=tmp_path / "reports",
                       leaderboards_dir=tmp_path / "lb", cache_dir=tmp_path / "cache", bootstrap=200)
    good = toyplugin.save_weights(tmp_path / "good.pt")
    run_models(replace(config, checkpoint=good))
    baselines = write_baselines(tmp_path / "baselines.yaml")
    runner = CliRunner()
    updated = runner.invoke(main, ["gate", "--update", "--baselines", str(baselines), "--reports-dir", str(config.reports_dir)])
    assert updated.exit_code == 0, updated.output
    text = baselines.read_text()
    assert text.startswith("# toy baselines\n# keep this comment\n")
    entries = yaml.safe_load(text)["baselines"]
    [record_file] = config.reports_dir.glob("*/metrics.json")
    record = json.loads(record_file.read_text())
    assert [e["expected"] for e in entries] == [record["metrics"]["accuracy"], record["metrics"]["brier"]]
    assert [e["tolerance"] for e in entries] == [0.01, 0.01]

    passed = runner.invoke(main, ["gate", "--baselines", str(baselines), "--reports-dir", str(config.reports_dir)])
    assert passed.exit_code == 0 and "all 2 checks passed" in passed.output
    lo, hi = record["confidence"]["accuracy"]
    assert f"[{lo:.4f}, {hi:.4f}]" in passed.output  # the CI column

    run_models(replace(config, checkpoint=toyplugin.save_weights(tmp_path / "worse.pt", noise=3.0, seed=2)))
    failed = runner.invoke(main, ["gate", "--baselines", str(baselines), "--reports-dir", str(config.reports_dir)])
    assert failed.exit_code == 1
    assert "regression: toy/toy-set/toy-linear accuracy:" in failed.output and "CI half-width" in failed.output
    checks = run_gate(load_baselines(baselines), config.reports_dir)
    drop = -checks[0].delta
    assert drop > checks[0].allowed == checks[0].baseline.tolerance  # the CI is shown, never widens the band


def test_a_drop_beyond_tolerance_fails_even_inside_the_confidence_interval(tmp_path):
    """Issue 11: the allowed drop is the tolerance; a wide interval (small set) must not license a regression."""
    from harness.publish.gate import Baseline, Check

    baseline = Baseline("toy", "toy-set", "m", "accuracy", expected=0.80, tolerance=0.01, direction="higher",
                        protocol="toy@1")
    assert not Check(baseline, 0.77, "r", protocol="toy@1").passed
    assert not Check(baseline, 0.77, "r", confidence=(0.70, 0.84), protocol="toy@1").passed  # half-width 0.07
    assert Check(baseline, 0.795, "r", confidence=(0.70, 0.84), protocol="toy@1").passed


def test_every_metric_gets_the_requested_resamples_whatever_it_costs():
    """No wall-clock budget: the interval is a function of the data, the seed and the count only."""
    seen = []

    class Slow(toyplugin.ToyAccuracy):
        name = "slow"

        def resampled(self, counts):
            seen.append(np.asarray(counts).copy())
            return super().resampled(counts)

    rng = np.random.default_rng(0)
    metric = Slow()
    metric.update([toyplugin.Sample(sample_id=i, image_path=None, target=toyplugin.ToyTarget(int(l)))
                   for i, l in enumerate(rng.integers(0, 3, 30))],
                  [toyplugin.ToyPrediction(s) for s in rng.dirichlet([1, 1, 1], 30)])
    intervals, settings_ = confidence_intervals([metric], 30, 500, seed=0)
    assert seen[0].shape == (500, 30) and (seen[0].sum(axis=1) == 30).all() and "accuracy" in intervals
    assert settings_["n_resamples"] == 500 and "budget" not in str(settings_)
    # the first k draws of a longer run are the draws of a shorter one
    from harness.core.metric import resample_counts

    np.testing.assert_array_equal(resample_counts(30, 20, seed=0), seen[0][:20])
    full, _ = confidence_intervals([filled_accuracy([0, 1], [[1, 0, 0], [0, 1, 0]])], 2, 50, seed=0)
    assert set(full) == {"accuracy", "brier"}
