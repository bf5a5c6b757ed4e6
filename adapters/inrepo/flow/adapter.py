"""``horn-schunck``, ``lucas-kanade``, ``farneback``, ``flownet-s`` and ``zero-flow``: the in-repo flow models.

Each predicts the flow from a sample's first frame to its second at the frames' size, (H, W, 2) float32 in
pixels.  The classical methods have no weights; their parameters were chosen once on the embedded train split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.inrepo.weights import WEIGHTS_DIR
from harness.core.adapter import Adapter, AdapterInfo
from adapters.inrepo.weights import default_weights
from adapters.inrepo.inference import PinnedThreads, fixed_inference
from adapters.inrepo.parameter_count import count_key, known_parameters
from harness.core.errors import BenchError, PredictionError
from harness.core.structures import FlowPrediction, Sample

TASK = "flow"
#: the frame size of the embedded Sintel-layout pairs, at which ``bench throughput`` times the network
EXAMPLE_SIZE = (64, 160)


def refuse_checkpoint(adapter: Adapter) -> None:
    """A weightless model given --checkpoint would silently ignore it; say so instead."""
    if adapter.checkpoint is not None:
        raise BenchError(f"model {adapter.name!r} has no weights; drop --checkpoint", adapter.checkpoint)


def frames(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    first, second = sample.load_image(), sample.load_image2()
    if first.shape != second.shape:
        raise PredictionError(f"sample {sample.sample_id}: frames differ in size ({first.shape[1]}x{first.shape[0]} "
                              f"vs {second.shape[1]}x{second.shape[0]})")
    return first, second


class ClassicalFlowAdapter(Adapter):
    """A per-pair estimator ``method(frame1, frame2) -> (H, W, 2)``; no weights, no torch module."""

    task = TASK
    runs_by_default = True
    batch_invariant = True  # one pair at a time, nothing shared between pairs

    def method(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        raise NotImplementedError

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        refuse_checkpoint(self)
        self.estimator = self.method()

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task=TASK, parameters=0, extra={"method": repr(self.estimator)})

    def fingerprint(self) -> str:
        """The estimator's parameters stand in for weights (the name and options alone would not change with them)."""
        import hashlib

        from harness.core.fingerprint import stable_text  # fields, never a repr that may hold an address

        return hashlib.sha256(f"{super().fingerprint()}|{stable_text(self.estimator)}".encode()).hexdigest()[:16]

    def predict(self, samples: Sequence[Sample]) -> list[FlowPrediction]:
        return [FlowPrediction(flow=np.asarray(self.estimator(*frames(s)), np.float32)) for s in samples]


@ADAPTERS.register("horn-schunck")
class HornSchunckAdapter(ClassicalFlowAdapter):
    """Horn-Schunck (global smoothness, Jacobi iterations), coarse to fine with warping."""

    def method(self):
        from adapters.inrepo.flow.classical import HornSchunck

        return HornSchunck()


@ADAPTERS.register("lucas-kanade")
class LucasKanadeAdapter(ClassicalFlowAdapter):
    """Dense pyramidal Lucas-Kanade (local constant flow in a Gaussian window) with iterative warping."""

    def method(self):
        from adapters.inrepo.flow.classical import LucasKanade

        return LucasKanade()


@ADAPTERS.register("farneback")
class FarnebackAdapter(ClassicalFlowAdapter):
    """OpenCV's Farneback polynomial-expansion flow."""

    def method(self):
        from adapters.inrepo.flow.classical import Farneback

        return Farneback()


@ADAPTERS.register("zero-flow")
class ZeroFlowAdapter(Adapter):
    """The trivial baseline: nothing moves.  Its EPE is the mean ground-truth speed."""

    task = TASK
    runs_by_default = True
    batch_invariant = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        refuse_checkpoint(self)

    def info(self) -> AdapterInfo:
        return AdapterInfo(name=self.name, task=TASK, parameters=0)

    def predict(self, samples: Sequence[Sample]) -> list[FlowPrediction]:
        return [FlowPrediction(flow=np.zeros((*frames(s)[0].shape[:2], 2), np.float32)) for s in samples]


@ADAPTERS.register("flownet-s")
class FlowNetSAdapter(PinnedThreads, Adapter):
    """A small FlowNetS trained on the embedded Sintel-layout train split (both passes) with a multi-scale EPE loss."""

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {"threads": "torch threads during predict (default 1)"}

    shipped_weights_dir = WEIGHTS_DIR

    task = TASK
    runs_by_default = True
    batch_invariant = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._network: Any = None

    @property
    def network(self) -> Any:
        """Built on first use (imports torch): a fully cached run never needs it (issue 15)."""
        if self._network is None:
            from adapters.inrepo.weights import load_into
            from adapters.inrepo.flow.networks import FlowNetS

            network = FlowNetS()
            load_into(network, self.weights_file(), self.trust_checkpoint)
            self._network = network.to(self.device).eval()
        return self._network

    def weights_file(self) -> Path:
        return self.checkpoint if self.checkpoint is not None else default_weights(TASK, "flownet-s")

    def info(self) -> AdapterInfo:
        key = count_key("adapters.inrepo.flow.networks:FlowNetS", "", self.weights_file())
        parameters = known_parameters(key, self._network, lambda: self.network)
        return AdapterInfo(name=self.name, task=TASK, parameters=parameters,
                           extra={"architecture": "FlowNetS (small)", "trained_on": "sintel-mini train (clean+final)"})

    def predict(self, samples: Sequence[Sample]) -> list[FlowPrediction]:
        """One pair at a time, edge-padded to a multiple of 16 and cropped back, with torch pinned to
        ``options["threads"]`` threads (default 1), so a flow never depends on the batch or the process count
        (see ``adapters.inrepo.inference``)."""
        with fixed_inference(self.options):
            return [FlowPrediction(flow=self._flow(*frames(sample))) for sample in samples]

    def _flow(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        import torch

        from adapters.inrepo.flow.data import normalise
        from adapters.inrepo.flow.networks import full_resolution

        height, width = first.shape[:2]
        stride = self.network.stride
        padding = (0, -width % stride, 0, -height % stride)
        pair = [torch.nn.functional.pad(normalise(frame[None]), padding, mode="replicate").to(self.device)
                for frame in (first, second)]
        finest = self.network(*pair)[-1]
        flow = full_resolution(finest, (pair[0].shape[-2], pair[0].shape[-1]))[0, :, :height, :width]
        return np.ascontiguousarray(flow.permute(1, 2, 0).float().cpu().numpy())

    def torch_module(self):
        return self.network

    def example_input(self, batch_size: int):
        import torch

        generator = torch.Generator().manual_seed(0)
        return (torch.randn((batch_size, 3, *EXAMPLE_SIZE), generator=generator),
                torch.randn((batch_size, 3, *EXAMPLE_SIZE), generator=generator))
