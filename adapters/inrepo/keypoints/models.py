"""The in-repo top-down keypoint models, registered without importing torch.

Each adapter names its network as ``"module:Class"`` (``heatmap.py``, ``hourglass.py``, ``mean_pose.py``,
``regression.py``, ``soft_argmax.py`` hold the networks, their losses and decoding), imported only when the
network is built.  The registry imports every adapter module to list the default models, so keeping torch out of
this module keeps it out of the listing and of a fully cached re-run (issue 15).
"""
from __future__ import annotations

from typing import Sequence

from harness.core.catalog import ADAPTERS
from adapters.inrepo.keypoints.adapter import TopDownAdapter, prompt_boxes
from harness.core.structures import KeypointsPrediction, Sample

PACKAGE = "adapters.inrepo.keypoints"


@ADAPTERS.register("heatmap")
class HeatmapAdapter(TopDownAdapter):
    model_name = "heatmap"
    network_path = f"{PACKAGE}.heatmap:HeatmapNet"
    input_hw = (64, 48)


@ADAPTERS.register("hourglass")
class HourglassAdapter(TopDownAdapter):
    model_name = "hourglass"
    network_path = f"{PACKAGE}.hourglass:StackedHourglassNet"
    input_hw = (64, 48)


@ADAPTERS.register("regression")
class RegressionAdapter(TopDownAdapter):
    model_name = "regression"
    network_path = f"{PACKAGE}.regression:RegressionNet"
    input_hw = (64, 48)


@ADAPTERS.register("soft-argmax")
class SoftArgmaxAdapter(TopDownAdapter):
    model_name = "soft-argmax"
    network_path = f"{PACKAGE}.soft_argmax:SoftArgmaxNet"
    input_hw = (64, 48)


@ADAPTERS.register("mean-pose")
class MeanPoseAdapter(TopDownAdapter):
    """No pixels: the fitted mean pose placed in each prompt box (``mean_pose.MeanPoseNet.place``)."""

    model_name = "mean-pose"
    network_path = f"{PACKAGE}.mean_pose:MeanPoseNet"
    input_hw = None

    def predict(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        network = self.network
        predictions = []
        for sample in samples:
            boxes = prompt_boxes(sample)
            keypoints = network.place(boxes)
            predictions.append(
                KeypointsPrediction(keypoints=keypoints, scores=keypoints[..., 2].mean(axis=1), boxes=boxes)
            )
        return predictions
