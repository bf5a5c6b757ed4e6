import shutil

import cv2
import numpy as np
import pytest

from harness.datasets import DATASETS
from harness.core.errors import BenchError, DataError
from harness.io.flowio import read_flo

from tests.conftest import DATA
from tests.datasets.checking import assert_clean, assert_problems, copy_tree, run_check

FIXTURE = DATA / "sintel"
FLO = FIXTURE / "training" / "flow" / "alley_1" / "frame_0002.flo"


def test_read_flo_on_the_real_sintel_file():
    flow = read_flo(FLO)
    assert flow.shape == (436, 1024, 2) and flow.dtype == np.float32
    np.testing.assert_array_equal(flow[0, 0], np.array([-1.7834561, 9.4193406e-04], np.float32))
    np.testing.assert_array_equal(flow[100, 500], np.array([-1.207009, 0.2755131], np.float32))
    assert float(np.abs(flow).max()) == pytest.approx(10.639279, abs=1e-6)


@pytest.mark.parametrize("render_pass", ["clean", "final"])
def test_real_alley_1_pair(render_pass):
    dataset = DATASETS.get("sintel")(FIXTURE, render_pass, "flow")
    assert dataset.info.split == render_pass and dataset.counts() == {"pairs": 1, "scenes": 1, "images": 2}
    sample = dataset[0]
    assert sample.sample_id == "alley_1/frame_0002"
    assert sample.image_path.name == "frame_0002.png" and sample.image_path2.name == "frame_0003.png"
    assert sample.image_path.parent.parent.name == render_pass
    target = sample.target
    np.testing.assert_array_equal(target.flow, read_flo(FLO))
    assert target.valid is None
    assert int(target.occluded.sum()) == 9912 and int(target.out_of_frame.sum()) == 80
    assert sample.load_image().shape == sample.load_image2().shape == (436, 1024, 3)
    assert_clean(run_check("sintel", FIXTURE, render_pass))


def test_passes_differ_in_pixels_not_in_ground_truth():
    clean, final = (DATASETS.get("sintel")(FIXTURE, p, "flow")[0] for p in ("clean", "final"))
    assert not np.array_equal(clean.load_image(), final.load_image())
    np.testing.assert_array_equal(clean.target.flow, final.target.flow)
    with pytest.raises(DataError, match="split must be a render pass"):
        DATASETS.get("sintel")(FIXTURE, "albedo", "flow")


def test_embedded_pairs_have_the_flow_that_warps_frame_2_onto_frame_1(bench_cache):
    dataset = DATASETS.get("sintel")(None, None, "flow")
    assert dataset.info.name == "sintel-mini" and dataset.info.split == "val-clean"
    assert dataset.counts() == {"pairs": 100, "scenes": 20, "images": 120}
    errors, occluded, outside = [], 0, 0
    for index in range(0, 100, 9):
        sample = dataset[index]
        flow, target = sample.target.flow, sample.target
        assert not (target.occluded & target.out_of_frame).any()
        occluded += int(target.occluded.sum())
        outside += int(target.out_of_frame.sum())
        y, x = np.mgrid[0 : flow.shape[0], 0 : flow.shape[1]].astype(np.float32)
        warped = cv2.remap(sample.load_image2().astype(np.float32), x + flow[..., 0], y + flow[..., 1],
                           cv2.INTER_LINEAR)
        matched = ~target.occluded & ~target.out_of_frame
        errors.append(np.abs(warped - sample.load_image()).mean(axis=2)[matched].mean())
        zero_error = np.abs(sample.load_image2().astype(np.float32) - sample.load_image()).mean(axis=2)[matched].mean()
        assert errors[-1] < 0.5 * zero_error  # the flow explains the motion, not just the identity
    assert np.median(errors) < 4.0 and occluded > 0 and outside > 0
    final = DATASETS.get("sintel")(None, "val-final", "flow")
    np.testing.assert_array_equal(final[0].target.flow, dataset[0].target.flow)
    assert not np.array_equal(final[0].load_image(), dataset[0].load_image())
    with pytest.raises(BenchError, match="embedded sintel splits are train or val"):
        DATASETS.get("sintel")(None, "clean", "flow")


def test_check_lists_every_planted_fault(bench_cache, tmp_path):
    source = DATASETS.get("sintel")(None, "val", "flow").training
    broken = copy_tree(source, tmp_path / "training")
    flo = broken / "flow" / "scene_100" / "frame_0002.flo"
    flo.write_bytes(flo.read_bytes()[:1000])
    (broken / "clean" / "scene_101" / "frame_0003.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (broken / "flow" / "scene_102" / "frame_0001.flo").unlink()
    shutil.rmtree(broken / "occlusions")
    (broken / "clean" / "scene_103" / "frame_0004.png").unlink()
    mask = broken / "invalid" / "scene_104" / "frame_0001.png"
    cv2.imwrite(str(mask), np.full((64, 160), 7, np.uint8))
    result = run_check("sintel", tmp_path, "clean")
    assert_problems(result, "folder occlusions/ is missing", "frame_0004.png is missing (the sequence jumps",
                    "scene_100/frame_0002.flo: truncated flow body", "scene_101/frame_0003.png: cannot decode image",
                    "scene_102/frame_0001.flo: flow file is missing", "mask values [7] are neither 0 nor 255")
    assert_clean(run_check("sintel", None, "val-final"))
