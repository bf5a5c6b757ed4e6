"""What every torchvision adapter shares: building a model with no download and finding its weights.

Weights come from ``--checkpoint``: a local state-dict file (read ``weights_only``), or ``weights:NAME`` naming a
torchvision weights enum (``weights:DEFAULT``, ``weights:COCO_V1`` or ``weights:FasterRCNN_ResNet50_FPN_Weights.COCO_V1``),
used only when its file is already in the local torch hub cache.  The ``weights`` option does the same as
``--checkpoint weights:NAME``.  A checkpoint file that *is* one of torchvision's releases (its file name, as
torchvision publishes it, and the sha256 digits that name carries) counts as that release.

A release is built as ``builder(weights=W)`` builds it, because that is a different network from
``builder(weights=None)`` + ``load_state_dict``: the trained build freezes the backbone's BatchNorm layers
(``FrozenBatchNorm2d``) and, for the legacy ``COCO_V1`` weights of Faster/Mask/Keypoint R-CNN and RetinaNet
(ResNet-50 FPN), sets their eps to 0 (torchvision's ``overwrite_eps``).  The state dict bench read safely
(``weights_only``) is handed to the builder in place of torchvision's own read of the file, so nothing is
downloaded and nothing is unpickled.  Any other file is a plain state dict for ``builder(weights=None,
weights_backbone=None)``, which is what torchvision's own ``load_state_dict`` on that file gives.
"""
from __future__ import annotations

import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import numpy as np

from harness.core.adapter import Adapter, AdapterInfo, load_state_dict
from harness.core.errors import BenchError
from harness.core.fingerprint import file_digest

RANDOM_WEIGHTS_WARNING = "NO CHECKPOINT: random weights, scores are meaningless (pass --checkpoint FILE or weights:NAME)"
WEIGHTS_PREFIX = "weights:"


def hub_cache_file(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps ``url``'s file."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


#: torch.hub's convention: ``name-<first hex digits of the file's sha256>.ext``
HUB_HASH = re.compile(r"-([a-f0-9]+)\.")


def release_of_file(builder: str, path: Path) -> Any:
    """The torchvision weights enum member whose published file ``path`` is, else None.

    Recognised as torch.hub checks a download: the file name of the release URL and the sha256 digits it
    carries.  A file with a release's name but other contents is refused rather than guessed about.
    """
    from torchvision.models import get_model_weights

    for member in get_model_weights(builder):
        published = os.path.basename(urlparse(member.url).path)
        if Path(path).name != published:
            continue
        match = HUB_HASH.search(published)
        if match and not file_digest(Path(path)).startswith(match.group(1)):
            raise BenchError(f"file is named like torchvision's {member} but its sha256 does not start with "
                             f"{match.group(1)} (a damaged download, or another file under that name)", path)
        return member
    return None


@contextmanager
def serving_state_dict(weights: Any, state_dict: dict[str, Any]) -> Iterator[None]:
    """Inside, ``weights.get_state_dict()`` returns ``state_dict`` (what bench read with ``weights_only``)
    instead of reading torchvision's cache; any other weights the builder asks for are refused."""
    family = type(weights)
    own = family.__dict__.get("get_state_dict")

    def get_state_dict(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self is not weights:
            raise BenchError(f"building {weights} asked for other weights ({self}); bench never downloads")
        return state_dict

    setattr(family, "get_state_dict", get_state_dict)
    try:
        yield
    finally:
        if own is None:
            delattr(family, "get_state_dict")
        else:
            setattr(family, "get_state_dict", own)


def resolve_weights_enum(builder: str, spec: str) -> Any:
    """The torchvision weights enum member ``spec`` names for ``builder`` (short or qualified name)."""
    from torchvision.models import get_model_weights

    family = get_model_weights(builder)
    qualifier, _, member = spec.rpartition(".")
    if qualifier and qualifier != family.__name__:
        raise BenchError(f"weights {spec!r} are not {builder} weights (those are {family.__name__}.*)")
    try:
        return family[member]
    except KeyError:
        known = ", ".join(["DEFAULT", *family.__members__])
        raise BenchError(f"unknown weights {spec!r} for {builder} (known: {known})") from None


class TorchvisionAdapter(Adapter):
    """Subclasses set ``task`` and ``builder`` (via the registered name) and implement ``predict``."""

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {
        "weights": "a torchvision weights enum name (DEFAULT, COCO_V1, ...)",
        "model_kwargs": "builder arguments (dotted: model_kwargs.box_score_thresh=0.05)",
        "max_batch": "inputs per forward pass",
    }

    runs_by_default = False
    #: builder keyword arguments fixed by the adapter (label-space size etc.)
    fixed_kwargs: dict[str, Any] = {}

    def __init__(self, name: str, checkpoint: Path | None = None, device: str = "cpu", trust_checkpoint: bool = False,
                 options: dict[str, Any] | None = None) -> None:
        super().__init__(name, checkpoint, device, trust_checkpoint, options)
        if not name.startswith("tv-"):
            raise BenchError(f"torchvision adapter names start with 'tv-', got {name!r}")
        self.builder = name[len("tv-"):]
        self.weights_spec = self._weights_spec()
        self._model: Any = None
        self._weights_path: Path | None = None
        self._release: Any = None  # the torchvision weights enum member the weights are, if any

    def _weights_spec(self) -> str | None:
        option = self.options.get("weights")
        from_checkpoint = str(self.checkpoint) if self.checkpoint is not None else ""
        if from_checkpoint.startswith(WEIGHTS_PREFIX):
            if option:
                raise BenchError("give torchvision weights either as --checkpoint weights:NAME or as the weights option, not both")
            self.checkpoint = None
            return from_checkpoint[len(WEIGHTS_PREFIX):]
        if option and self.checkpoint is not None:
            raise BenchError("give either a checkpoint file or torchvision weights, not both")
        return str(option) if option else None

    # -- weights
    def weights_file(self) -> Path | None:
        if self.checkpoint is not None:
            return self.checkpoint
        if self.weights_spec is not None:
            return hub_cache_file(resolve_weights_enum(self.builder, self.weights_spec).url)
        return None

    def check_weights_meta(self, meta: dict[str, Any]) -> None:
        """Refuse torchvision weights whose label metadata differs from the adapter's table (never remap)."""

    def _load_weights(self) -> dict[str, Any] | None:
        if self.checkpoint is not None:
            self._weights_path = self.checkpoint
            if self.checkpoint.is_file():
                self._release = release_of_file(self.builder, self.checkpoint)
            if self._release is not None:
                self.check_weights_meta(self._release.meta)
            return load_state_dict(self.checkpoint, self.trust_checkpoint)
        if self.weights_spec is None:
            return None
        weights = resolve_weights_enum(self.builder, self.weights_spec)
        path = hub_cache_file(weights.url)
        if not path.is_file():
            raise BenchError(
                f"torchvision weights {weights} are not in the local torch hub cache (bench never downloads); "
                f"put the file there or pass --checkpoint FILE",
                path,
            )
        self.check_weights_meta(weights.meta)
        self._weights_path = path
        self._release = weights
        return load_state_dict(path, self.trust_checkpoint)

    def build_kwargs(self, state_dict: dict[str, Any] | None) -> dict[str, Any]:
        """Builder arguments that depend on the weights (e.g. an auxiliary head present in the state dict)."""
        return {}

    def model(self) -> Any:
        if self._model is not None:
            return self._model
        import inspect

        import torch
        from torchvision.models import get_model_builder

        state = self._load_weights()
        builder = get_model_builder(self.builder)
        kwargs = {**self.fixed_kwargs, **self.build_kwargs(state), **dict(self.options.get("model_kwargs") or {})}
        if "weights_backbone" in inspect.signature(builder).parameters:
            kwargs["weights_backbone"] = None  # an ImageNet backbone would be downloaded otherwise
        try:
            if state is None:
                model = builder(weights=None, **kwargs)
                warnings.warn(f"{self.name}: {RANDOM_WEIGHTS_WARNING}", stacklevel=2)
            elif self._release is not None:
                with serving_state_dict(self._release, state):
                    model = builder(weights=self._release, **kwargs)  # loads strictly, as torchvision does
            else:
                model = builder(weights=None, **kwargs)
                model.load_state_dict(state, strict=True)
        except (RuntimeError, ValueError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = " ".join(lines[1:3] if len(lines) > 1 else lines)[:300]
            raise BenchError(f"checkpoint does not fit {self.builder}: {detail}", self._weights_path) from None
        self._model = model.to(torch.device(self.device)).eval()
        return self._model

    def torch_module(self) -> Any:
        """The torchvision network itself (``bench throughput`` times its forward pass on ``example_input``)."""
        return self.model()

    def base_info(self, **fields: Any) -> AdapterInfo:
        model = self.model()
        extra: dict[str, Any] = {"library": "torchvision", "builder": self.builder}
        if self._weights_path is None:
            extra["warning"] = RANDOM_WEIGHTS_WARNING
        if self._release is not None:
            extra["weights"] = str(self._release)  # built as torchvision builds these weights
        extra.update(fields.pop("extra", {}))
        return AdapterInfo(name=self.name, task=self.task, parameters=sum(int(p.numel()) for p in model.parameters()),
                           extra=extra, **fields)

    def default_transforms(self, **overrides: Any) -> Any:
        """The preprocessing torchvision ships with the builder's default weights (no download needed);
        ``overrides`` change its parameters (e.g. ``resize_size``)."""
        from torchvision.models import get_model_weights

        return get_model_weights(self.builder).DEFAULT.transforms(**overrides)


def image_tensor(image: np.ndarray, device: str) -> Any:
    """(H, W, 3) uint8 RGB -> (3, H, W) uint8 tensor on ``device``."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(device)
