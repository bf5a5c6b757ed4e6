"""How the in-repo networks run, so that an image's prediction never depends on the batch it came in.

Measured on CPU (torch 2.14, oneDNN kernels): a network's float32 output for one image changes in the last bits
with the batch it is computed in (its size, the other images in it) and with torch's thread count, and an image
padded to the largest image of its batch sees different borders.  Last bits become different boxes, peaks and
argmax labels, hence different metrics for another ``--batch-size`` or another number of torchrun processes.

So every in-repo network runs with a fixed structure: one image at a time (one image's people, for the top-down
keypoint models), each image padded on its own, with torch's thread count pinned.  On two CPU cores this costs
little: one-image forwards of these small networks run about as fast as batched ones at one thread (centernet
92 ms vs 98 ms for 16 images), and the keypoint models still batch the people of an image.

The thread count is set once per run, not per batch: the run loop enters ``PinnedThreads.session()`` around the
whole loop, and ``fixed_inference`` (around each ``predict``) then finds the count already right and changes
nothing; called outside a run loop (tests, the Python API), it pins and restores the count itself.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from typing import Any, Iterator, Mapping

#: torch threads during ``predict`` unless ``options["threads"]`` says otherwise; one thread also suits a machine
#: shared with other jobs, and it is what every torchrun process gets by default (``OMP_NUM_THREADS=1``)
DEFAULT_THREADS = 1


def prediction_threads(options: Mapping[str, Any]) -> int:
    return int(options.get("threads", DEFAULT_THREADS))


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """torch at ``threads`` threads inside the block; the count is changed (and restored) only if it differs."""
    import torch

    previous = torch.get_num_threads()
    if previous == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def fixed_inference(options: Mapping[str, Any]) -> Iterator[None]:
    """torch pinned to ``prediction_threads(options)`` threads, in inference mode.

    Predictions are bit-identical for a given thread count whatever the batch size or number of processes.
    """
    import torch

    with pinned_threads(prediction_threads(options)), torch.inference_mode():
        yield


class PinnedThreads:
    """Mixin for in-repo adapters: the run loop's session pins torch's thread count once for the whole run."""

    options: dict[str, Any]

    def session(self) -> AbstractContextManager[None]:
        return pinned_threads(prediction_threads(self.options))
