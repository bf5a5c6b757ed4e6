"""torchvision RAFT optical flow: ``tv-raft_small``, ``tv-raft_large``.

Frames are normalised to [-1, 1] (torchvision's ``OpticalFlow`` transform) and padded by edge replication to a
multiple of 8, split evenly between the two sides (the RAFT authors' "sintel" padding), and to at least 128
pixels a side (RAFT's correlation pyramid needs that much); the flow is cropped back to the original size.
``num_flow_updates`` defaults to 32, the RAFT authors' Sintel evaluation setting (torchvision's forward
default is 12); the option overrides it.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from harness.core.adapter import AdapterInfo
from adapters.torchvision._common import TorchvisionAdapter, image_tensor
from harness.core.errors import BenchError
from harness.core.structures import FlowPrediction, Sample

FLOW_BUILDERS = ("raft_small", "raft_large")
DEFAULT_FLOW_UPDATES = 32
STRIDE = 8
#: RAFT's correlation pyramid needs feature maps of at least 16 cells (16 x stride 8)
MIN_SIDE = 128
#: (height, width) of ``example_input``'s frames: a Sintel frame (436 x 1024) padded to the stride
EXAMPLE_SIZE = (440, 1024)


def centred_padding(height: int, width: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) that make both sides multiples of the network stride and at least MIN_SIDE
    (smaller frames cannot go through RAFT at all, so growing them changes no official result)."""
    pad_h = max((-height) % STRIDE, MIN_SIDE - height)
    pad_w = max((-width) % STRIDE, MIN_SIDE - width)
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


class TorchvisionRAFT(TorchvisionAdapter):
    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {
        **TorchvisionAdapter.accepted_options,
        "num_flow_updates": "RAFT refinement iterations (default 32)",
    }
    task = "flow"

    def updates(self) -> int:
        return int(self.options.get("num_flow_updates", DEFAULT_FLOW_UPDATES))

    def info(self) -> AdapterInfo:
        return self.base_info(extra={"num_flow_updates": self.updates(), "padding": "replicate, centred, to x8"})

    def torch_module(self) -> Any:
        """RAFT with this adapter's number of flow updates, returning the last flow estimate: what ``predict``
        runs, as a module taking the two frames (``example_input``)."""
        from adapters.torchvision.timing_modules import LastFlow

        return LastFlow(self.model(), self.updates())

    def example_input(self, batch_size: int) -> Any:
        """Two ``(batch, 3, H, W)`` frames in [-1, 1] at Sintel's size padded to the stride (440 x 1024)."""
        import torch

        generator = torch.Generator().manual_seed(0)
        return tuple(torch.rand((batch_size, 3, *EXAMPLE_SIZE), generator=generator) * 2 - 1 for _ in range(2))

    def predict(self, samples: Sequence[Sample]) -> list[FlowPrediction]:
        import torch
        import torch.nn.functional as F

        model = self.model()
        transform = self.default_transforms()
        size = int(self.options.get("max_batch", 2))
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, sample in enumerate(samples):
            image1, image2 = sample.load_image(), sample.load_image2()
            if image1.shape != image2.shape:
                raise BenchError(f"sample {sample.sample_id}: frames differ in size {image1.shape[:2]} vs {image2.shape[:2]}")
            by_shape[image1.shape].append(index)
        flows: dict[int, np.ndarray] = {}
        with torch.no_grad():
            for (height, width, _), indices in by_shape.items():
                left, right, top, bottom = centred_padding(height, width)
                for start in range(0, len(indices), size):
                    chunk = indices[start : start + size]
                    first = torch.stack([image_tensor(samples[i].load_image(), self.device) for i in chunk])
                    second = torch.stack([image_tensor(samples[i].load_image2(), self.device) for i in chunk])
                    first, second = transform(first, second)
                    first = F.pad(first, (left, right, top, bottom), mode="replicate")
                    second = F.pad(second, (left, right, top, bottom), mode="replicate")
                    flow = model(first, second, num_flow_updates=self.updates())[-1]
                    flow = flow[:, :, top : top + height, left : left + width]
                    for index, item in zip(chunk, flow.permute(0, 2, 3, 1).cpu().numpy()):
                        flows[index] = np.ascontiguousarray(item, dtype=np.float32)
        return [FlowPrediction(flow=flows[i]) for i in range(len(samples))]


for _builder in FLOW_BUILDERS:
    ADAPTERS.register(f"tv-{_builder}")(TorchvisionRAFT)
