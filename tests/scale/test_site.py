"""`bench site` in a real browser: served from localhost, the rendered table matches the CSV, sorting works,
nothing is fetched from anywhere else."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from dataclasses import replace
from urllib.parse import urlparse

import pandas as pd
import pytest
from click.testing import CliRunner
from playwright.sync_api import sync_playwright

import toyplugin  # noqa: F401
from harness.run.bench_run import RunConfig, run_models
from harness.cli import main
from harness.publish.site import curve_series
from harness.run.throughput_benchmark import ThroughputConfig, measure_throughput

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
def site(tmp_path):
    config = RunConfig(task="toy", batch_size=2, reports_dir=tmp_path / "reports", leaderboards_dir=tmp_path / "lb",
                       cache_dir=tmp_path / "cache", bootstrap=30)
    run_models(replace(config, models=("toy-linear", "toy-noisy", "toy-hungry")))
    run_models(replace(config, models=("toy-linear", "toy-noisy"), limit=20))
    measure_throughput(ThroughputConfig(task="toy", model="toy-linear", batch_sizes=(1, 4), repeats=3, warmup=0,
                                        leaderboards_dir=tmp_path / "lb"))
    result = CliRunner().invoke(main, ["site", "--reports-dir", str(tmp_path / "reports"), "--leaderboards-dir",
                                       str(tmp_path / "lb"), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    return tmp_path / "site"


@pytest.fixture
def served(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def cells(page, table_id):
    return page.eval_on_selector_all(
        f"#{table_id} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.hasAttribute('data-value') ? c.getAttribute('data-value') : c.textContent.trim()))")


def test_site_renders_the_csv_sorts_and_stays_offline(site, served, tmp_path):
    assert Path(CHROMIUM).is_file(), "headless Chromium is missing: run scripts/install_browser.sh"
    csv = pd.read_csv(site / "toy.csv")
    assert len(csv) == 5 and set(csv["limit"].dropna()) == {20}
    requested = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        context.on("request", lambda request: requested.append(request.url))
        page = context.new_page()
        page.goto(f"{served}/index.html")
        assert page.inner_text("#tasks tbody tr:first-child td:nth-child(3)") in ("toy-linear", "toy-hungry")  # tied best
        page.click("#tasks a >> nth=0")
        page.wait_for_selector("#board-toy-set-full")
        header = page.eval_on_selector_all("#board-toy-set-full thead th", "hs => hs.map(h => h.dataset.column)")
        assert header == ["model", "accuracy", "balanced_accuracy", "brier", "images_per_s", "latency_p50_ms", "samples", "finished_utc"]
        full = csv[csv["limit"].isna()]
        rendered = cells(page, "board-toy-set-full")
        assert [row[0] for row in rendered] == full["model"].tolist()  # ranked by accuracy, as in the CSV
        for row, (_, expected) in zip(rendered, full.iterrows()):
            for column, value in zip(header[1:7], row[1:7]):
                assert float(value) == pytest.approx(float(expected[column]), rel=1e-12, abs=0), (column, row[0])
        ci_text = page.inner_text("#board-toy-set-full tbody tr:first-child td:nth-child(2) .ci")
        assert ci_text == f"[{full.iloc[0]['accuracy_ci_low']:.4f}, {full.iloc[0]['accuracy_ci_high']:.4f}]"

        page.click("#board-toy-set-full th[data-column=brier]")
        ascending = [float(row[3]) for row in cells(page, "board-toy-set-full")]
        assert ascending == sorted(full["brier"].tolist())
        page.click("#board-toy-set-full th[data-column=brier]")
        assert [float(row[3]) for row in cells(page, "board-toy-set-full")] == sorted(full["brier"].tolist(), reverse=True)
        page.click("#board-toy-set-full th[data-column=model]")
        assert [row[0] for row in cells(page, "board-toy-set-full")] == sorted(full["model"].tolist())

        smoke = cells(page, "board-toy-set-20")
        assert sorted(row[0] for row in smoke) == ["toy-linear", "toy-noisy"] and {row[6] for row in smoke} == {"20"}
        assert page.locator("img.chart").count() == 4  # accuracy-vs-throughput and the PR curve, per board
        sizes = page.eval_on_selector_all("img.chart", "is => is.map(i => [i.naturalWidth, i.naturalHeight])")
        assert all(w > 100 and h > 100 for w, h in sizes), sizes
        assert page.locator("table.per-class").count() == 2
        page.screenshot(path=str(tmp_path / "toy.png"), full_page=True)

        page.click("text=toy-noisy >> nth=0")  # the run's own report, copied into the site
        page.wait_for_selector("#metrics")
        assert "toy-noisy on toy-set" in page.inner_text("h1")
        context.close()
    assert (tmp_path / "toy.png").stat().st_size > 10_000
    assert requested and all(urlparse(url).hostname == "127.0.0.1" for url in requested), requested


def test_curve_shapes_the_site_understands():
    found = curve_series({
        "pr": {"recall": [0, 1], "precision": [1, 0]},
        "epe": {"x": [1, 2], "y": [3, 4], "xlabel": "px"},
        "per-iou": {"0.5": {"recall": [0.0], "precision": [1.0]}, "0.75": {"recall": [0.5], "precision": [0.5]}},
        "raw": [[1, 2]], "ragged": {"x": [1], "y": [1, 2]},
    })
    assert sorted(found) == ["epe", "per-iou", "pr"]
    assert found["epe"][0][3] == "px" and [line[0] for line in found["per-iou"]] == ["0.5", "0.75"]
