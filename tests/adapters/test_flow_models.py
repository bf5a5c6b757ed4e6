"""In-repo optical flow: classical methods recover known translations, the committed FlowNetS loads safely and beats
zero flow on validation pairs, and every model returns (H, W, 2) float32 at the frames' size."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from harness.core.catalog import ADAPTERS
from adapters.inrepo.weights import default_weights
from adapters.inrepo.flow.classical import Farneback, HornSchunck, LucasKanade, upsample_flow, warp
from adapters.inrepo.flow.train import train, with_other_pass
from adapters.inrepo.train_loop import FirstSamples
from harness.run.bench_run import default_models
from harness.tasks import get_task
from harness.datasets import DATASETS
from harness.core.errors import BenchError, PredictionError
from harness.run.runner import evaluate
from harness.core.structures import FlowPrediction, FlowTarget, Sample

CLASSICAL = ("horn-schunck", "lucas-kanade", "farneback")
MODELS = (*CLASSICAL, "flownet-s", "zero-flow")
VAL_PAIRS = 10


@pytest.fixture(scope="module")
def val_set():
    return DATASETS.get("sintel")(None, "val", "flow")


@pytest.fixture(scope="module")
def adapters():
    return {name: ADAPTERS.get(name)(name) for name in MODELS}


def textured_pair(shift: tuple[float, float], height: int = 64, width: int = 96, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Two frames of one smooth random texture, the second moved by ``shift`` = (dx, dy) pixels exactly.

    The texture is drawn at 4x resolution and area-averaged down, so a quarter-pixel shift is an integer shift
    of the fine texture: frame2(x) = frame1(x - shift) with no interpolation error.
    """
    rng = np.random.default_rng(seed)
    pad, fine = 16, 4
    big_h, big_w = (height + 2 * pad) * fine, (width + 2 * pad) * fine
    coarse = rng.uniform(0, 255, (big_h // 8, big_w // 8, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(cv2.resize(coarse, (big_w, big_h), interpolation=cv2.INTER_CUBIC), (0, 0), fine * 0.8)
    dx, dy = (round(s * fine) for s in shift)
    assert (dx / fine, dy / fine) == tuple(shift), "shifts must be multiples of a quarter pixel"

    def frame(offset_x: int, offset_y: int) -> np.ndarray:
        top, left = pad * fine + offset_y, pad * fine + offset_x
        window = texture[top : top + height * fine, left : left + width * fine]
        return np.clip(cv2.resize(window, (width, height), interpolation=cv2.INTER_AREA), 0, 255).astype(np.uint8)

    return frame(0, 0), frame(-dx, -dy)


def pair_sample(first: np.ndarray, second: np.ndarray, name: str = "pair") -> Sample:
    sample = Sample(sample_id=name, image_path=Path(f"/nonexistent/{name}_1.png"),
                    image_path2=Path(f"/nonexistent/{name}_2.png"),
                    target=FlowTarget(flow=np.zeros((*first.shape[:2], 2), np.float32)))
    sample._decoded[0], sample._decoded[1] = first, second
    return sample


@pytest.mark.parametrize("method", [LucasKanade(), HornSchunck(), Farneback()], ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("shift", [(1.75, -1.25), (0.5, 0.25), (3.5, 2.0)])
def test_classical_methods_recover_a_constant_translation(method, shift):
    first, second = textured_pair(shift)
    flow = method(first, second)
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    error = np.linalg.norm(flow[8:-8, 8:-8] - np.float32(shift), axis=2)  # borders: content enters or leaves
    assert error.mean() < 0.1
    assert np.percentile(error, 95) < 0.25


def test_flow_convention_is_frame1_to_frame2():
    """Warping frame 2 by the estimated flow reproduces frame 1 (I1(x) = I2(x + flow(x)))."""
    first, second = textured_pair((2.0, 1.0))
    flow = HornSchunck()(first, second)
    residual = np.abs(warp(second.astype(np.float32), flow) - first.astype(np.float32))[8:-8, 8:-8]
    assert residual.mean() < 2.0
    assert np.abs(second.astype(np.float32) - first.astype(np.float32))[8:-8, 8:-8].mean() > 5 * residual.mean()


def test_upsampling_a_flow_scales_its_components():
    flow = np.dstack([np.full((8, 10), 1.5, np.float32), np.full((8, 10), -2.0, np.float32)])
    up = upsample_flow(flow, (16, 30))
    assert up.shape == (16, 30, 2)
    np.testing.assert_allclose(up[..., 0], 4.5, rtol=1e-6)
    np.testing.assert_allclose(up[..., 1], -4.0, rtol=1e-6)


def test_committed_flownet_weights_are_small_and_load_without_unpickling():
    path = default_weights("flow", "flownet-s")
    assert path.stat().st_size < 2_000_000
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state and all(isinstance(value, torch.Tensor) for value in state.values())


def test_all_models_run_by_default():
    assert set(MODELS) <= set(default_models("flow"))


@pytest.mark.parametrize("name", MODELS)
def test_predictions_are_float32_flow_of_the_frame_size(adapters, name):
    shapes = [(64, 96), (70, 150), (64, 96)]  # 70x150: not a multiple of the network's stride
    samples = [pair_sample(*textured_pair((1.0, 0.5), h, w, seed=i), name=f"p{i}") for i, (h, w) in enumerate(shapes)]
    predictions = adapters[name].predict(samples)
    assert len(predictions) == len(samples)
    for (height, width), prediction in zip(shapes, predictions):
        assert isinstance(prediction, FlowPrediction)
        assert prediction.flow.shape == (height, width, 2) and prediction.flow.dtype == np.float32
        assert np.isfinite(prediction.flow).all()
    assert adapters[name].info().task == "flow"


def test_frames_of_different_sizes_are_refused(adapters):
    first, _ = textured_pair((1.0, 0.0))
    second, _ = textured_pair((1.0, 0.0), height=48)
    with pytest.raises(PredictionError, match="frames differ in size"):
        adapters["farneback"].predict([pair_sample(first, second)])


def test_every_method_beats_zero_flow_on_validation_pairs(adapters, val_set):
    task = get_task("flow")
    indices = list(range(VAL_PAIRS))
    scores = {name: evaluate(task, val_set, adapter, indices=indices, batch_size=5).result.metrics
              for name, adapter in adapters.items()}
    zero = scores["zero-flow"]
    speeds = [np.linalg.norm(val_set[i].target.flow.astype(np.float64), axis=2) for i in indices]
    assert zero["EPE"] == pytest.approx(np.concatenate([s.ravel() for s in speeds]).mean(), rel=1e-9)
    for name in (*CLASSICAL, "flownet-s"):
        assert scores[name]["EPE"] < 0.6 * zero["EPE"], (name, scores[name]["EPE"], zero["EPE"])
        assert scores[name]["1px"] > zero["1px"], name


def test_a_short_training_run_lowers_the_loss(val_set, tmp_path):
    outcome = train("flownet-s", [FirstSamples(val_set, 4)], out=tmp_path / "flownet.pt", steps=40, batch_size=4,
                    seed=1)
    assert len(outcome.losses) == 40
    assert np.mean(outcome.losses[-5:]) < 0.85 * np.mean(outcome.losses[:5])
    reloaded = ADAPTERS.get("flownet-s")("flownet-s", checkpoint=outcome.weights)
    assert reloaded.predict([pair_sample(*textured_pair((1.0, 0.0)))])[0].flow.shape == (64, 96, 2)


def test_a_checkpoint_of_another_model_is_refused_in_one_line():
    # the network is built on first use (info(), which check_compatible calls before anything runs), not in
    # __init__: a fully cached run never builds it (issue 15)
    with pytest.raises(BenchError, match="does not fit FlowNetS") as error:
        ADAPTERS.get("flownet-s")("flownet-s", checkpoint=default_weights("semantic", "fcn")).info()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", [*CLASSICAL, "zero-flow"])
def test_weightless_models_refuse_a_checkpoint(name):
    with pytest.raises(BenchError, match="has no weights"):
        ADAPTERS.get(name)(name, checkpoint=default_weights("flow", "flownet-s"))


def test_training_on_one_render_pass_adds_the_other(val_set):
    passes = with_other_pass(val_set)
    assert [d.info.split for d in passes] == ["val-clean", "val-final"]
    assert [d.info.split for d in with_other_pass(passes[1])] == ["val-clean", "val-final"]
    assert len(passes[1]) == len(val_set)
    assert [s.sample_id for s in passes[1]][:3] == [s.sample_id for s in val_set][:3]


def test_bench_train_trains_and_scores_flownet(tmp_path):
    from click.testing import CliRunner

    from harness.cli import main

    out = tmp_path / "flownet.pt"
    arguments = ["train", "--task", "flow", "--model", "flownet-s", "--epochs", "1", "--split", "val", "--out", str(out)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert "flownet-s on sintel-mini val-clean" in result.output and "EPE" in result.output
    assert "25 steps" in result.output  # 1 epoch of both passes: 200 pairs in batches of 8


def test_classical_methods_have_nothing_to_train(val_set):
    with pytest.raises(BenchError, match="no trainer"):
        train("horn-schunck", val_set)
