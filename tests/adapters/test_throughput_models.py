"""``bench throughput`` on torchvision and OpenMMLab models (issue 15): their adapters expose the network
(``torch_module``) and a batch it takes (``example_input``), so bf16 autocast, channels_last, torch.compile,
parameters and FLOPs work for them as for the in-repo models.  Random weights, nothing downloaded; compiled
with dynamo's ``eager`` backend here (inductor works too but takes minutes on this CPU: see the report)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from harness.core.catalog import ADAPTERS
from harness.run.throughput_benchmark import ThroughputConfig, count_flops, measure_throughput


def measure(tmp_path, task, model, **settings):
    config = ThroughputConfig(task=task, model=model, batch_sizes=(1, 2), repeats=2, warmup=1, precision="bf16",
                              channels_last=True, compile=True, compile_backend="eager", leaderboards_dir=tmp_path,
                              **settings)
    return measure_throughput(config)


def assert_module_rows(rows, parameters):
    assert [(r["batch_size"], r["effective_batch_size"], r["status"]) for r in rows] == [(1, 1, "ok"), (2, 2, "ok")]
    assert all(r["mode"] == "module" and r["precision"] == "bf16" and r["channels_last"] and r["compile"] for r in rows)
    assert all(r["parameters"] == parameters and r["gflops_per_image"] > 0.1 for r in rows)
    assert all(r["images_per_s"] > 0 for r in rows)


@pytest.mark.filterwarnings("ignore:.*random weights")
def test_torchvision_segmenter_and_detector(tmp_path):
    rows = measure(tmp_path, "semantic", "tv-lraspp_mobilenet_v3_large")
    network = ADAPTERS.get("tv-lraspp_mobilenet_v3_large")("tv-lraspp_mobilenet_v3_large").torch_module()
    assert_module_rows(rows, sum(p.numel() for p in network.parameters()))
    # the counted FLOPs are the network's at the preset's 520 x 520 input
    assert rows[0]["gflops_per_image"] == pytest.approx(count_flops(network, torch.zeros(1, 3, 520, 520)) / 1e9)
    detector = measure(tmp_path, "detection", "tv-ssdlite320_mobilenet_v3_large")  # a list of images in, boxes out
    assert_module_rows(detector, ADAPTERS.get("tv-ssdlite320_mobilenet_v3_large")("tv-ssdlite320_mobilenet_v3_large").info().parameters)
    table = pd.read_csv(tmp_path / "throughput.csv")
    assert sorted(set(table["model"])) == ["tv-lraspp_mobilenet_v3_large", "tv-ssdlite320_mobilenet_v3_large"]


@pytest.mark.filterwarnings("ignore:.*random weights")
def test_openmmlab_detector_runs_its_network_in_tensor_mode(tmp_path):
    pytest.importorskip("mmdet")
    name = "mmdet:rtmdet_tiny_8xb32-300e_coco"
    rows = measure(tmp_path, "detection", name)
    adapter = ADAPTERS.get(name)(name, options={"config": "rtmdet_tiny_8xb32-300e_coco"})
    assert_module_rows(rows, adapter.info().parameters)
    batch = adapter.example_input(2)
    assert tuple(batch.shape) == (2, 3, 640, 640)  # the test pipeline's 640 x 640, padded to the divisor 32
    with torch.no_grad():
        scores, boxes = adapter.torch_module()(batch)  # mode='tensor': raw head outputs per FPN level
    assert len(scores) == len(boxes) == 3 and scores[0].shape[:2] == (2, 80)


@pytest.mark.filterwarnings("ignore:.*random weights")
def test_two_stage_openmmlab_detector_gets_image_shapes(tmp_path):
    """Faster/Mask R-CNN clip proposals to the data samples' image shapes even in mode='tensor'."""
    pytest.importorskip("mmdet")
    name = "mmdet:faster-rcnn_r50_fpn_1x_coco"
    adapter = ADAPTERS.get(name)(name, options={"config": "faster-rcnn_r50_fpn_1x_coco",
                                                "cfg_options": {"test_dataloader.dataset.pipeline.1.scale": (160, 128)}})
    batch = adapter.example_input(1)
    assert tuple(batch.shape) == (1, 3, 128, 160)
    with torch.no_grad():
        (roi_outputs,) = adapter.torch_module()(batch)  # mmdet: a 1-tuple of the RoI head's outputs
    assert roi_outputs[0].shape[-1] == 81  # class scores per proposal: 80 classes + background
