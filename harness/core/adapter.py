"""The Adapter contract: a batch of samples in, one task-typed prediction per sample out.

The adapter owns its preprocessing and batching; the harness only hands it samples and times the call.  It
also declares what it was trained for (classes, keypoint order, input size) so the harness can refuse a
dataset it would silently mis-score instead of falling back to somebody's default metadata.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError
from harness.core.structures import Sample


@dataclass
class AdapterInfo:
    name: str
    task: str
    classes: list[str] = field(default_factory=list)
    keypoint_names: list[str] = field(default_factory=list)
    input_size: tuple[int, int] | None = None  # (height, width) the model sees
    parameters: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Adapter(ABC):
    """Subclasses set ``task`` and implement ``info`` and ``predict``.

    ``checkpoint`` is a local path the user gave (or None for the adapter's default, e.g. our committed weights).
    ``options`` carries adapter-specific settings such as the config name after ``mmdet:``.
    """

    task: str = ""
    #: False for adapters that never look at pixels (predictions read from files): the runner skips decoding
    needs_images: bool = True
    #: True when a sample's prediction is the same, bit for bit, whatever the other samples of its batch and
    #: the batch size (e.g. the model runs one image at a time, padded on its own).  Models that pad a batch to
    #: its largest image, or run batched float kernels, are not; the prediction cache then also keys their
    #: predictions by the number of processes (``harness.run.prediction_cache.batching_key``).
    batch_invariant: bool = False
    #: folder of the weights files shipped with the model, named ``<task>_<model>[_<family>].pt``; None when the
    #: user supplies the weights.  ``bench models list`` reads it without building the network.
    shipped_weights_dir: ClassVar[Path | None] = None
    #: the options a user may set with ``bench run --model-arg key=value`` (name -> what it does); a key not
    #: listed is refused in one line, so a typo never runs the model with its default silently
    accepted_options: ClassVar[dict[str, str]] = {}
    #: set by the run loop while it times batches (``harness.run.runner``): ``mark`` reports stage ends to it
    stage_marker: Callable[[str], None] | None = None

    @classmethod
    def shipped_weights(cls, name: str) -> list[Path]:
        """The weights files shipped for the model registered as ``name``, its default first."""
        folder = cls.shipped_weights_dir
        if folder is None:
            return []
        # model names hold '-', never '_': 'prior-boxes_' does not match 'prior-boxes-mask_'
        return sorted(folder.glob(f"*_{name}.pt")) + sorted(folder.glob(f"*_{name}_*.pt"))

    def has_weights_for(self, dataset: DatasetInfo) -> bool:
        """Whether the model has weights for ``dataset`` (its own, or the user's ``--checkpoint``).  A default
        ``bench run`` (no ``--model``) leaves out, with a note, the models without; naming one gives its error."""
        return True

    def __init__(
        self,
        name: str,
        checkpoint: Path | None = None,
        device: str = "cpu",
        trust_checkpoint: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.device = device
        self.trust_checkpoint = trust_checkpoint
        self.options = options or {}

    @abstractmethod
    def info(self) -> AdapterInfo: ...

    @abstractmethod
    def predict(self, samples: Sequence[Sample]) -> list[Any]:
        """One prediction per sample, in order, of the task's prediction type (``harness.core.structures``)."""

    def prepare(self, sample: Sample) -> Any:
        """The CPU work for one sample that needs no model, run ahead of it and outside the timed region.

        It runs in a data-loading worker process when ``bench run --workers N`` is above 0, in the run loop's
        process otherwise; the loop then hands its return value to ``predict`` as ``sample.prepared`` (tensors
        in it pinned when the device is CUDA, so ``.to(device, non_blocking=True)`` overlaps).  The default
        decodes the sample's images and returns None.  An override must depend on the sample alone (never on
        the batch, the worker or earlier samples), so predictions stay bit-identical for any worker count, and
        ``predict`` must still work on samples nobody prepared (``sample.prepared is None``).
        """
        if self.needs_images:
            sample.preload()
        return None

    def session(self) -> AbstractContextManager[None]:
        """Process-wide settings the model predicts under (e.g. torch's thread count), entered once around the
        run loop rather than changed on every batch.  Default: none."""
        return nullcontext()

    def mark(self, stage: str) -> None:
        """Tell the run loop's clock that ``stage`` (``"transfer"``, ``"model"``, ``"postprocess"``) just ended:
        the time since the previous mark is booked to it, so metrics.json reports the stages apart.  A no-op
        outside a timed batch; it records a CUDA event on GPUs and never synchronises."""
        if self.stage_marker is not None:
            self.stage_marker(stage)

    def torch_module(self) -> Any:
        """The ``torch.nn.Module`` doing the forward pass, for ``bench throughput``; None when there is none.

        Returning a module lets the harness time the network alone (fp16/bf16, channels_last, torch.compile),
        count its parameters and FLOPs; without one, throughput is timed through ``predict``.  A library model
        whose forward needs fixed arguments is returned wrapped in a small module that supplies them (RAFT's
        update count, OpenMMLab's ``mode='tensor'``).
        """
        return None

    def example_input(self, batch_size: int) -> Any:
        """A batch the module accepts, on the CPU: a tensor (one argument), a tuple of tensors (positional
        arguments) or a list (one argument, e.g. the list of images a torchvision detector takes).

        Default: a random ``(batch, 3, H, W)`` float tensor at ``info().input_size``; override when the module
        takes anything else.
        """
        import torch

        size = self.info().input_size
        if size is None:
            raise BenchError(f"model {self.name!r} declares no input size; it must override example_input()")
        generator = torch.Generator().manual_seed(0)
        return torch.rand((batch_size, 3, *size), generator=generator)

    def weights_file(self) -> Path | None:
        """The file whose bytes define the model's behaviour (hashed into the fingerprint)."""
        return self.checkpoint

    def fingerprint(self) -> str:
        """Identifies the model exactly: name, options and a hash of the weights, for caches and provenance."""
        from harness.core.fingerprint import stable_text  # no memory addresses: the same key in every process

        digest = hashlib.sha256(f"{self.name}|{stable_text(self.options)}".encode())
        weights = self.weights_file()
        if weights is not None and Path(weights).is_file():
            with open(weights, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]

    def check_compatible(self, dataset: DatasetInfo) -> None:
        """Refuse a dataset whose label space differs from the model's (never map silently)."""
        info = self.info()
        if info.task != dataset.task:
            raise BenchError(f"model {self.name!r} is a {info.task} model, dataset {dataset.name!r} is {dataset.task}")
        if info.keypoint_names and dataset.keypoint_names and info.keypoint_names != dataset.keypoint_names:
            raise BenchError(
                f"model {self.name!r} predicts keypoints {info.keypoint_names} but dataset {dataset.name!r} "
                f"uses {dataset.keypoint_names}"
            )
        if info.classes and dataset.classes and info.classes != dataset.classes:
            raise BenchError(
                f"model {self.name!r} classes differ from dataset {dataset.name!r}: "
                f"{len(info.classes)} vs {len(dataset.classes)} (first difference: "
                f"{_first_difference(info.classes, dataset.classes)})"
            )


def _first_difference(a: list[str], b: list[str]) -> str:
    for index, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"#{index} {x!r} vs {y!r}"
    return f"lengths {len(a)} and {len(b)}"


def read_checkpoint(path: Path, trust_checkpoint: bool = False, safe_globals: Sequence[Any] = ()) -> Any:
    """The whole checkpoint object, loaded with ``weights_only=True`` unless the user said ``--trust-checkpoint``.

    ``safe_globals`` widens the weights-only allowlist with types that cannot run code (e.g. numpy arrays kept
    in an OpenMMLab checkpoint's metadata).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise BenchError("checkpoint file not found", path)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise BenchError(
            f"refusing to unpickle arbitrary objects ({first_line}); pass --trust-checkpoint if you trust this file",
            path,
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise BenchError(f"cannot read checkpoint ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", path) from None


def load_state_dict(path: Path, trust_checkpoint: bool = False) -> dict[str, Any]:
    """Load a checkpoint safely: ``weights_only=True`` unless the user said ``--trust-checkpoint``."""
    checkpoint = read_checkpoint(path, trust_checkpoint)
    return state_dict_of(checkpoint, path)


def state_dict_of(checkpoint: Any, path: Path) -> dict[str, Any]:
    """The weights inside a loaded checkpoint: its ``state_dict`` entry when it has one, else itself."""
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], dict):
        return checkpoint["state_dict"]
    if isinstance(checkpoint, dict):
        return checkpoint
    raise BenchError(f"expected a state dict, found {type(checkpoint).__name__}", path)
