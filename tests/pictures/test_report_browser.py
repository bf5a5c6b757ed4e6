"""report.html and the site from a real small run of each task, in headless Chromium: the pictures are there
and real (natural size > 100x100 px, pixel variance > 0), the gallery has 12 images, nothing overflows the page
sideways.  Screenshots are saved under the test's tmp dir (and ``$BENCH_SCREENSHOTS`` when set)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from playwright.sync_api import sync_playwright

from harness.run.bench_run import RunConfig, run_models
from harness.cli import main

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
MODELS = {"detection": "centernet", "instance": "centernet-mask", "keypoints": "heatmap", "semantic": "aspp",
          "flow": "horn-schunck"}
#: figures each task's report must show (by their alt text)
FIGURES = {
    "detection": {"Precision-recall per IoU threshold", "Precision-recall per class", "AP per class",
                  "Class confusion (IoU 0.5)", "Error analysis (TIDE)"},
    "instance": {"Precision-recall per IoU threshold", "Precision-recall per class", "AP per class",
                 "Class confusion (IoU 0.5)", "Error analysis (TIDE)"},
    "keypoints": {"Precision-recall per IoU threshold", "PCK@0.2 per joint"},
    "semantic": {"IoU per class", "Confusion matrix"},
    "flow": {"End-point error histogram", "Flow colour key"},
}
PER_IMAGE_SCORE = {"detection": "f1", "instance": "f1", "keypoints": "oks", "semantic": "miou", "flow": "epe"}


def check_page(page, url: str, html: Path, shots: Path, name: str) -> list[dict]:
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    images = page.eval_on_selector_all(
        "img", "is => is.map(i => ({src: i.getAttribute('src'), alt: i.alt, w: i.naturalWidth, h: i.naturalHeight}))")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert overflow <= 0, f"{name}: the page is {overflow} px wider than the window"
    for image in images:
        assert image["w"] > 100 and image["h"] > 100, f"{name}: {image['src']} is {image['w']}x{image['h']}"
        pixels = np.asarray(Image.open(html.parent / image["src"]).convert("RGB"), dtype=np.float64)
        assert pixels.var() > 0, f"{name}: {image['src']} is one flat colour"
    return images


@pytest.mark.parametrize("task", list(MODELS))
def test_report_and_site_in_a_browser(task, tmp_path):
    assert Path(CHROMIUM).is_file(), "headless Chromium is missing: run scripts/install_browser.sh"
    config = RunConfig(task=task, models=(MODELS[task],), limit=16, batch_size=8, reports_dir=tmp_path / "reports",
                       leaderboards_dir=tmp_path / "lb", cache_dir=tmp_path / "cache", bootstrap=20)
    [record] = run_models(config)
    run_dir = Path(record["run_dir"])
    table = pd.read_csv(run_dir / "per_image.csv")
    assert len(table) == 16 and PER_IMAGE_SCORE[task] in table and table["image_id"].nunique() == 16
    parquet = pd.read_parquet(run_dir / "per_image.parquet")
    assert parquet[PER_IMAGE_SCORE[task]].tolist() == pytest.approx(table[PER_IMAGE_SCORE[task]].tolist(), nan_ok=True)
    result = CliRunner().invoke(main, ["site", "--reports-dir", str(tmp_path / "reports"), "--leaderboards-dir",
                                       str(tmp_path / "lb"), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        report = run_dir / "report.html"
        images = check_page(page, report.as_uri(), report, shots, f"{task}-report")
        alts = {image["alt"] for image in images}
        assert FIGURES[task] <= alts, FIGURES[task] - alts
        assert page.locator("#gallery figure").count() == 12
        assert page.locator("#gallery figure.worst").count() == 6
        headline = page.inner_text("#headline")
        assert "95% CI [" in headline
        assert "-1.0000" not in page.inner_text("body")  # COCO's -1 shows as n/a
        if task in ("detection", "instance"):
            assert page.locator("#tide-table tbody tr").count() == 6
        # the site: the task page, then the run's own page with its pictures copied along
        task_page = tmp_path / "site" / f"{task}.html"
        check_page(page, task_page.as_uri(), task_page, shots, f"{task}-site")
        copied = tmp_path / "site" / "runs" / record["run_id"] / "report.html"
        check_page(page, copied.as_uri(), copied, shots, f"{task}-site-run")
        assert page.locator("#gallery figure").count() == 12
        browser.close()
    if os.environ.get("BENCH_SCREENSHOTS"):
        shutil.copytree(shots, Path(os.environ["BENCH_SCREENSHOTS"]), dirs_exist_ok=True)
