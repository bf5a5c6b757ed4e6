"""mmpose bottom-up models (``mmpose-bu:``), random weights: RTMO end to end on CPU, scores as the config's
CocoMetric ``score_mode`` says, refused under protocols that give boxes."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness.core.catalog import ADAPTERS
from harness.core.errors import BenchError
from harness.run.keypoint_protocols import KeypointCondition, accepts
from tests.adapters.samples import coco_eval, keypoint_results

pytest.importorskip("mmpose")

RTMO = "rtmo-s_8xb32-600e_coco-640x640"
#: 256x256 input: the same code path at a fraction of the CPU time
SMALL = {"test_dataloader.dataset.pipeline.1.input_size": (256, 256), "model.test_cfg.input_size": (256, 256)}


@pytest.fixture(scope="module")
def rtmo():
    torch.manual_seed(0)
    name = f"mmpose-bu:{RTMO}"
    adapter = ADAPTERS.get(name)(name, options={"config": RTMO, "cfg_options": SMALL})
    adapter.info()
    return adapter


def test_rtmo_with_random_weights_predicts_people_in_image_coordinates(rtmo, tiny_coco):
    dataset = tiny_coco.keypoint_dataset()
    rtmo.check_compatible(dataset.info)
    sample = dataset[0]
    prediction = rtmo.predict([sample])[0]
    people = len(prediction.keypoints)
    assert prediction.keypoints.shape == (people, 17, 3) and prediction.scores.shape == (people,)
    # random weights: RTMO's coordinate classifier can give NaN joints; boxes and scores are always numbers
    assert prediction.boxes.shape == (people, 4) and np.isfinite(prediction.boxes).all()
    assert np.isfinite(prediction.scores).all()
    height, width = sample.load_image().shape[:2]
    # boxes clamped to the (letterboxed) input map back into the image's frame, not the 256x256 input
    assert prediction.boxes[:, 2].max(initial=0) <= width * 1.01 + 1
    assert rtmo.score_mode() == "bbox" and rtmo.info().extra["bottom_up"] is True


def test_bottom_up_scores_follow_the_configs_score_mode(rtmo, tiny_coco, monkeypatch):
    """Ground-truth people through the adapter's output path score AP 1; bbox mode keeps the model's score."""
    dataset = tiny_coco.keypoint_dataset()
    samples = list(dataset)
    rtmo.check_compatible(dataset.info)
    people = iter(samples)

    def ground_truth_step(batch):
        sample = next(people)
        keep = ~sample.target.iscrowd & (sample.target.num_keypoints > 0)
        points = sample.target.keypoints[keep][..., :2].astype(np.float32)
        count = len(points)
        return [SimpleNamespace(pred_instances=SimpleNamespace(
            keypoints=points, keypoint_scores=np.full((count, 17), 0.5, np.float32),
            bbox_scores=np.linspace(0.9, 0.6, count, dtype=np.float32),
            bboxes=np.zeros((count, 4), np.float32)))]

    monkeypatch.setattr(rtmo.built().model, "test_step", ground_truth_step)
    predictions = rtmo.predict(samples)
    first = predictions[0]
    np.testing.assert_allclose(first.scores, np.linspace(0.9, 0.6, len(first.scores)).astype(np.float32))
    assert coco_eval(tiny_coco.gt(), keypoint_results(samples, predictions), "keypoints")[0] == pytest.approx(1.0)
    monkeypatch.setattr(type(rtmo), "score_mode", lambda self: "keypoint")
    assert np.allclose(rtmo._people(SimpleNamespace(keypoints=np.zeros((1, 17, 2)),
                                                    keypoint_scores=np.full((1, 17), 0.25)), "keypoint").scores, 0.25)


def test_top_down_configs_are_refused_and_protocols_checked():
    name = "mmpose-bu:rtmpose-t_8xb256-420e_aic-coco-256x192"
    with pytest.raises(BenchError, match="mmpose-bu: runs bottom-up configs"):
        ADAPTERS.get(name)(name, options={"config": name.partition(":")[2]}).info()
    cls = ADAPTERS.get(f"mmpose-bu:{RTMO}")
    assert accepts(cls, KeypointCondition("bottom-up"))
    assert not accepts(cls, KeypointCondition("gt-boxes"))
    assert not getattr(cls, "runs_by_default", False)


# ------------------------------------------------------------------------------------------ DEKR
DEKR = "dekr_hrnet-w32_8xb10-140e_coco-512x512"


def test_dekr_with_random_weights_runs_its_deformable_convolutions_through_the_shim(tiny_coco, monkeypatch):
    """DEKR's adaptive activation blocks are mmcv DeformConv2d layers: with the shim serving
    ``deform_conv_forward`` from torchvision, the whole config runs end to end on CPU."""
    import sys

    torch.manual_seed(0)
    name = f"mmpose-bu:{DEKR}"
    adapter = ADAPTERS.get(name)(name, options={
        "config": DEKR, "cfg_options": {"test_dataloader.dataset.pipeline.1.input_size": (256, 256)}})
    adapter.info()  # builds the model, with the shim in place
    from mmcv.ops import DeformConv2d

    assert any(isinstance(module, DeformConv2d) for module in adapter.built().model.modules())
    ext = sys.modules["mmcv._ext"]
    calls = []
    served = ext.deform_conv_forward

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return served(*args, **kwargs)

    monkeypatch.setattr(ext, "deform_conv_forward", counted)
    dataset = tiny_coco.keypoint_dataset()
    adapter.check_compatible(dataset.info)
    sample = dataset[0]
    prediction = adapter.predict([sample])[0]
    assert calls  # the deformable convolutions ran (17 keypoint branches x 2 blocks per pass)
    people = len(prediction.keypoints)
    assert people > 0 and prediction.keypoints.shape == (people, 17, 3) and prediction.scores.shape == (people,)
    assert np.isfinite(prediction.keypoints).all() and np.isfinite(prediction.scores).all()
    # score_mode 'keypoint' (the config's CocoMetric): a person's score is the mean of its keypoint scores
    assert adapter.score_mode() == "keypoint"
    np.testing.assert_allclose(prediction.scores, prediction.keypoints[..., 2].mean(axis=1))
    # no box head: the box is the keypoints' extent, in the image's frame (not the 256x256 input's)
    np.testing.assert_allclose(prediction.boxes[:, :2], prediction.keypoints[..., :2].min(axis=1))
    height, width = sample.load_image().shape[:2]
    assert adapter.info().extra["bottom_up"] is True
    assert (np.abs(prediction.keypoints[..., 0]) <= 2 * width).all()
    assert (np.abs(prediction.keypoints[..., 1]) <= 2 * height).all()
