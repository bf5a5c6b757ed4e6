"""The ``openpose`` adapter (bottom-up; the network, its targets and decoding are in ``openpose.py``).

Kept apart from the network so that registering it imports no torch: the registry imports every adapter module
to list the default models, and a fully cached re-run of ``bench run`` must not pay for torch (issue 15).
``openpose.py`` is imported when the network is built or a sample is predicted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.core.catalog import ADAPTERS
from harness.core.adapter import Adapter, AdapterInfo, load_state_dict
from adapters.inrepo.inference import PinnedThreads, fixed_inference
from adapters.inrepo.keypoints.paf_grouping import COCO_LIMBS
from adapters.inrepo.keypoints.skeletons import COCO17, skeleton_weights, skeleton_of
from adapters.inrepo.parameter_count import count_key, known_parameters
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.core.structures import KeypointsPrediction, Sample

#: the network input the embedded scenes have; other images are scaled to fit and padded
INPUT_WH = (256, 192)
NETWORK_PATH = "adapters.inrepo.keypoints.openpose:OpenPoseNet"


@ADAPTERS.register("openpose")
class OpenPoseAdapter(PinnedThreads, Adapter):
    """Bottom-up: ignores person boxes; run it with ``bench run --task keypoints --protocol bottom-up``."""

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {"threads": "torch threads during predict (default 1)"}

    task = "keypoints"
    runs_by_default = True
    batch_invariant = True
    bottom_up = True
    model_name = "openpose"
    #: the network's limbs: ``OpenPoseNet``'s default, which ``network`` builds (a test checks they agree)
    limbs: tuple[tuple[int, int], ...] = tuple(COCO_LIMBS)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._network: Any = None
        self.skeleton = COCO17

    def weights_file(self) -> Path:
        return self.checkpoint if self.checkpoint is not None else skeleton_weights(self.model_name, self.skeleton)

    def check_compatible(self, dataset: DatasetInfo) -> None:
        if dataset.task == self.task and skeleton_of(dataset.keypoint_names, f"dataset {dataset.name!r}") != COCO17:
            raise BenchError(f"model {self.name!r} has weights for COCO-17 keypoints only")
        super().check_compatible(dataset)

    @property
    def network(self) -> Any:
        if self._network is None:
            from adapters.inrepo.keypoints.openpose import OpenPoseNet

            network = OpenPoseNet(self.skeleton.num_joints)
            path = self.weights_file()
            state = load_state_dict(path, self.trust_checkpoint)
            try:
                network.load_state_dict(state)
            except RuntimeError as exc:
                raise BenchError(f"weights do not fit the {self.model_name!r} network "
                                 f"({str(exc).strip().splitlines()[-1].strip()})", path) from None
            self._network = network.eval().to(self.device)
        return self._network

    def info(self) -> AdapterInfo:
        key = count_key(NETWORK_PATH, f"num_joints={self.skeleton.num_joints}", self.weights_file())
        return AdapterInfo(name=self.name, task="keypoints", keypoint_names=list(self.skeleton.keypoint_names),
                           input_size=(INPUT_WH[1], INPUT_WH[0]),
                           parameters=known_parameters(key, self._network, lambda: self.network),
                           extra={"weights": str(self.weights_file()), "bottom_up": True,
                                  "limbs": [list(limb) for limb in self.limbs]})

    def torch_module(self):
        return self.network

    def predict(self, samples: Sequence[Sample]) -> list[KeypointsPrediction]:
        with fixed_inference(self.options):
            return [self._predict_sample(sample) for sample in samples]

    def _predict_sample(self, sample: Sample) -> KeypointsPrediction:
        import torch

        from adapters.inrepo.keypoints.openpose import decode_people, fit_image

        image, scale = fit_image(sample.load_image())
        batch = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float()
        output = self.network(batch)[0, -1].cpu().numpy()
        keypoints, scores, boxes = decode_people(output, self.skeleton.num_joints, self.network.limbs)
        keypoints[..., :2] /= scale
        boxes /= scale
        return KeypointsPrediction(keypoints=keypoints, scores=scores, boxes=boxes)
