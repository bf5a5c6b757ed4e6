"""What the mmdet, mmpose and mmseg adapters share: config lookup, safe checkpoint loading, label metadata.

The rules every OpenMMLab adapter follows:

- ``CONFIG`` is a path to a config file, or the stem of a config shipped inside the package (``.mim/configs``).
- Weights come only from ``--checkpoint``, read with ``weights_only=True`` (numpy arrays in the metadata are
  allowed, nothing that can run code) and put into the model with ``load_state_dict``; mmengine's own loader
  unpickles anything, so it is never used.  No checkpoint means random weights and a loud warning.
- Class names / keypoint order come from the checkpoint's ``meta.dataset_meta``, else from the dataset the
  config trains on.  No metadata means refusal: the library's habit of assuming COCO is exactly the silent
  mis-scoring bench exists to prevent.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import importlib.util
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from harness.core.adapter import Adapter, AdapterInfo, read_checkpoint, state_dict_of
from adapters.openmmlab.published import published_scores
from harness.core.dataset import DatasetInfo
from harness.core.errors import BenchError, UnknownNameError
from harness.core.structures import Sample

RANDOM_WEIGHTS_WARNING = "NO CHECKPOINT: random weights, scores are meaningless (pass --checkpoint FILE)"
INSTALL_HINT = "run `sh scripts/install_openmmlab.sh .venv` (see docs/openmmlab.md)"


# ------------------------------------------------------------------------------------------------ configs
def require_package(package: str) -> Any:
    """Import an OpenMMLab package after registering the mmcv._ext stand-in it needs."""
    from adapters.openmmlab._ext_shim import install_ext_shim

    install_ext_shim()
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise BenchError(f"{package} is not installed ({exc}); {INSTALL_HINT}") from None


def shipped_config_root(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BenchError(f"{package} is not installed; {INSTALL_HINT}")
    return Path(spec.origin).parent / ".mim" / "configs"


@lru_cache(maxsize=None)
def shipped_configs(package: str) -> dict[str, tuple[Path, ...]]:
    """Config stem -> files, for every config the package ships (``_base_`` fragments excluded)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(shipped_config_root(package).rglob("*.py")):
        if "_base_" in path.parts or path.name.startswith("_"):
            continue
        found.setdefault(path.stem, []).append(path)
    return {stem: tuple(paths) for stem, paths in found.items()}


def resolve_config(package: str, spec: str) -> Path:
    """A config file path, or the unique shipped config named ``spec`` (file stem, ``.py`` optional)."""
    if not spec:
        raise BenchError(f"name a config: --model {package}:CONFIG (a .py file or a config shipped with {package})")
    candidate = Path(spec).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    if "/" in spec or "\\" in spec:
        raise BenchError("config file not found", candidate)
    stem = spec[:-3] if spec.endswith(".py") else spec
    configs = shipped_configs(package)
    if stem not in configs:
        hints = difflib.get_close_matches(stem, list(configs), n=3, cutoff=0.5)
        suggestion = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise UnknownNameError(f"no config {stem!r} ships with {package} and no such file exists{suggestion}")
    if len(configs[stem]) > 1:
        listed = ", ".join(str(p) for p in configs[stem])
        raise BenchError(f"config name {stem!r} is ambiguous in {package}; pass one of these paths: {listed}")
    return configs[stem][0]


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> Any:
    """The mmengine Config with ``overrides`` merged (dotted keys, list indices allowed) and no pretrained
    backbone download left in it (building never downloads, but ``init_weights`` would)."""
    from mmengine.config import Config

    try:
        config = Config.fromfile(str(path))
    except Exception as exc:  # mmengine raises many types for a broken config file
        raise BenchError(f"cannot read config ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", path) from None
    if overrides:
        config.merge_from_dict(dict(overrides), allow_list_keys=True)
    model = config.model
    if "backbone" in model and isinstance(model.backbone, dict) and "init_cfg" in model.backbone:
        model.backbone.init_cfg = None  # type: ignore[attr-defined]  # an mmengine ConfigDict
    if "pretrained" in model:
        model.pretrained = None
    return config


# ------------------------------------------------------------------------------------------- checkpoints
def numpy_safe_globals() -> list[Any]:
    """numpy arrays, scalars and dtypes: OpenMMLab keeps them in ``meta.dataset_meta``; none can run code."""
    from numpy._core.multiarray import _reconstruct, scalar

    dtypes = [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    return [np.ndarray, np.dtype, _reconstruct, scalar] + [t for t in dtypes if isinstance(t, type) and issubclass(t, np.dtype)]


@dataclass
class Checkpoint:
    state_dict: dict[str, Any]
    dataset_meta: dict[str, Any] | None


def read_openmmlab_checkpoint(path: Path, trust_checkpoint: bool) -> Checkpoint:
    raw = read_checkpoint(path, trust_checkpoint, safe_globals=numpy_safe_globals())
    state = state_dict_of(raw, path)
    meta = raw.get("meta") if isinstance(raw, dict) else None
    dataset_meta = None
    if isinstance(meta, dict):
        if isinstance(meta.get("dataset_meta"), dict):
            dataset_meta = {str(key).lower(): value for key, value in meta["dataset_meta"].items()}
        elif meta.get("CLASSES") is not None:  # mmdet 2.x checkpoints
            dataset_meta = {"classes": meta["CLASSES"]}
    return Checkpoint(state_dict=state, dataset_meta=dataset_meta)


def put_weights(model: Any, state_dict: dict[str, Any], path: Path) -> list[str]:
    """Load ``state_dict`` into ``model``; every model weight must be present.  Returns the unexpected keys
    (extra entries such as EMA copies are tolerated, missing ones would leave random weights behind)."""
    state = {re.sub(r"^module\.", "", key): value for key, value in state_dict.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc).splitlines()[0])
        raise BenchError(f"checkpoint does not fit the config ({detail})", path) from None
    if result.missing_keys:
        shown = ", ".join(result.missing_keys[:3])
        raise BenchError(
            f"checkpoint does not fit the config: {len(result.missing_keys)} model weights missing (e.g. {shown})", path
        )
    return list(result.unexpected_keys)


# --------------------------------------------------------------------------------------------- metadata
def config_dataset_candidates(config: Any) -> Iterator[dict[str, Any]]:
    """Dataset configs the model's label space can be read from: the training set first (it defines what the
    output indices mean), then the test set; dataset wrappers (RepeatDataset, ClassBalancedDataset) unwrapped."""
    for loader in ("train_dataloader", "test_dataloader", "val_dataloader"):
        dataset = config.get(loader, {}).get("dataset") if isinstance(config.get(loader), dict) else None
        while isinstance(dataset, dict):
            yield dataset
            dataset = dataset.get("dataset")


def class_metainfo_from_config(config: Any, registry: Any) -> dict[str, Any] | None:
    """The metainfo (with ``classes``) that the config's dataset class and its ``metainfo=`` override declare."""
    for dataset in config_dataset_candidates(config):
        dataset_type = dataset.get("type")
        try:
            cls = dataset_type if isinstance(dataset_type, type) else registry.get(dataset_type)
        except Exception:
            cls = None
        if cls is None or not hasattr(cls, "_load_metainfo"):
            continue
        try:
            metainfo = cls._load_metainfo(copy.deepcopy(dataset.get("metainfo")))
        except Exception:
            continue
        if metainfo and metainfo.get("classes"):
            return dict(metainfo)
    return None


def dataset_view(dataset: DatasetInfo, model_classes: list[str]) -> DatasetInfo:
    """The dataset as the model spells its classes, where the dataset itself says the spellings are synonyms.

    A dataset may list synonyms per class in ``extra["class_synonyms"]`` (ADE20K's objectInfo150 does: mmseg
    says "television receiver" where the devkit's first name is "television").  Nothing else is renamed, so any
    other difference still makes ``check_compatible`` refuse.
    """
    synonyms = dataset.extra.get("class_synonyms") or []
    classes = list(dataset.classes)
    for index, name in enumerate(model_classes[: len(classes)]):
        if index < len(synonyms) and name != classes[index] and name in {str(s).strip() for s in synonyms[index]}:
            classes[index] = name
    return dataclasses.replace(dataset, classes=classes)


def missing_metadata_message(name: str, what: str, config_path: Path) -> str:
    return (
        f"model {name!r} carries no {what}: neither the checkpoint's meta.dataset_meta nor the datasets of "
        f"{config_path.name} name them. Save them in the checkpoint (checkpoint['meta']['dataset_meta']) or set "
        f"metainfo=dict(...) on the config's train_dataloader.dataset; bench never assumes COCO"
    )


def bgr(sample: Sample) -> np.ndarray:
    """OpenMMLab pipelines take images as OpenCV reads them (BGR); the data preprocessor flips them back."""
    return np.ascontiguousarray(sample.load_image()[..., ::-1])


def test_pipeline_config(config: Any, first_transform: str) -> list[dict[str, Any]]:
    """The config's test pipeline reading an in-memory image and no annotations (we score, not the pipeline)."""
    if config.get("test_dataloader") and config.test_dataloader.get("dataset", {}).get("pipeline"):
        pipeline = copy.deepcopy(list(config.test_dataloader.dataset.pipeline))
    elif config.get("test_pipeline"):
        pipeline = copy.deepcopy(list(config.test_pipeline))
    else:
        raise BenchError("config has no test pipeline (test_dataloader.dataset.pipeline or test_pipeline)")
    pipeline = [step for step in pipeline if not str(step.get("type", "")).split(".")[-1].startswith("LoadAnnotations")]
    if str(pipeline[0].get("type", "")).split(".")[-1].startswith("LoadImage"):
        pipeline[0] = {"type": first_transform}
    return pipeline


def resize_input_size(pipeline: Sequence[dict[str, Any]]) -> tuple[int, int] | None:
    """(height, width) of the first ``Resize`` step (mmcv scales are (w, h)), for the report."""
    for step in pipeline:
        if str(step.get("type", "")).split(".")[-1] == "Resize" and step.get("scale") is not None:
            scale = step["scale"]
            if isinstance(scale, (tuple, list)) and len(scale) == 2:
                return int(scale[1]), int(scale[0])
    return None


# ---------------------------------------------------------------------------------------------- adapter
@dataclass
class BuiltModel:
    model: Any
    config: Any
    metadata: dict[str, Any]
    unexpected_keys: list[str] = field(default_factory=list)


class OpenMMLabAdapter(Adapter):
    """Shared build/metadata logic; subclasses set ``package``, ``scope`` and implement the model specifics.

    Options: ``config`` (from ``--model PACKAGE:CONFIG``), ``cfg_options`` (a dict of dotted config
    overrides, as mmengine's ``--cfg-options``; e.g. a smaller test scale) and ``max_batch`` (inputs per
    forward pass, default ``default_max_batch``).

    Batch-sensitive: the library's data preprocessor pads a batch to its largest input, and batched
    convolutions round differently from single ones, so outputs depend on which inputs share a forward pass.
    One input per pass reproduces the library's ``inference_*`` functions exactly
    (``tests/adapters/test_parity_openmmlab.py``).
    """

    #: ``bench run --model-arg`` keys (harness.run.model_options)
    accepted_options = {
        "cfg_options": "config overrides (bench run --cfg-options)",
        "max_batch": "inputs per forward pass",
    }

    runs_by_default = False
    package: str = ""
    scope: str = ""
    #: inputs per forward pass unless the ``max_batch`` option says otherwise
    default_max_batch: int = 1

    def __init__(self, name: str, checkpoint: Path | None = None, device: str = "cpu", trust_checkpoint: bool = False,
                 options: dict[str, Any] | None = None) -> None:
        super().__init__(name, checkpoint, device, trust_checkpoint, options)
        self.config_path = resolve_config(self.package, str(self.options.get("config", "")))
        self._built: BuiltModel | None = None
        self._category_ids: np.ndarray | None = None

    # -- to implement
    def build_model(self, config: Any) -> Any:
        raise NotImplementedError

    def metadata_from_config(self, config: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def validate_metadata(self, config: Any, metadata: dict[str, Any]) -> None:
        """Refuse metadata that cannot describe this model's outputs (e.g. a different number of classes)."""

    def published_protocol(self, config: Any) -> dict[str, Any]:
        """How the config's published score was measured, where bench's default protocol may differ."""
        return {}

    # -- shared
    def max_batch(self) -> int:
        value = self.options.get("max_batch", self.default_max_batch)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BenchError(f"option max_batch must be a positive integer, got {value!r}")
        return value

    def scope_context(self) -> Any:
        from mmengine.registry import DefaultScope

        return DefaultScope.overwrite_default_scope(self.scope)

    def built(self) -> BuiltModel:
        if self._built is not None:
            return self._built
        require_package(self.package)
        import torch
        from mmengine.model.utils import revert_sync_batchnorm

        config = load_config(self.config_path, self.options.get("cfg_options"))
        with self.scope_context():
            model = revert_sync_batchnorm(self.build_model(config))
            checkpoint = read_openmmlab_checkpoint(self.checkpoint, self.trust_checkpoint) if self.checkpoint else None
            unexpected = put_weights(model, checkpoint.state_dict, self.checkpoint) if checkpoint and self.checkpoint else []
            metadata = (checkpoint.dataset_meta if checkpoint else None) or self.metadata_from_config(config) or {}
            if metadata:
                self.validate_metadata(config, metadata)
        if checkpoint is None:
            warnings.warn(f"{self.name}: {RANDOM_WEIGHTS_WARNING}", stacklevel=2)
        model.to(torch.device(self.device)).eval()
        self._built = BuiltModel(model=model, config=config, metadata=metadata, unexpected_keys=unexpected)
        return self._built

    #: the data-sample class ``mode='tensor'`` forwards get (``"package.structures:Class"``); None: no samples
    data_sample_class: str | None = None

    def torch_module(self) -> Any:
        """The network in OpenMMLab's ``mode='tensor'`` (backbone, neck, heads; no decoding), as one module call
        on a normalised, padded batch (``adapters/openmmlab/timing.py``)."""
        import importlib

        from adapters.openmmlab.timing import TensorForward

        sample_type = None
        if self.data_sample_class is not None:
            module, _, name = self.data_sample_class.partition(":")
            sample_type = getattr(importlib.import_module(module), name)
        return TensorForward(self.built().model, sample_type)

    def example_input(self, batch_size: int) -> Any:
        """A normalised ``(batch, 3, H, W)`` batch at the test pipeline's size, padded as the data
        preprocessor pads (``pad_size_divisor``)."""
        import torch

        from adapters.openmmlab.timing import padded_size

        size = self.info().input_size
        if size is None:
            raise BenchError(f"model {self.name!r}: its config's test pipeline gives no input size to time at")
        height, width = padded_size(size, self.built().model)
        return torch.randn((batch_size, 3, height, width), generator=torch.Generator().manual_seed(0))

    def base_info(self, task: str, **fields: Any) -> AdapterInfo:
        built = self.built()
        extra: dict[str, Any] = {"config": str(self.config_path), "library": self.package}
        if self.checkpoint is None:
            extra["warning"] = RANDOM_WEIGHTS_WARNING
        if built.unexpected_keys:
            extra["ignored_checkpoint_keys"] = len(built.unexpected_keys)
        published = published_scores(self.package, task, self.config_path)
        if published is not None:
            if self.options.get("cfg_options"):  # the zoo's number is for the config as shipped
                published["cfg_options"] = sorted(str(key) for key in self.options["cfg_options"])
            published.update(self.published_protocol(built.config))
            extra["published"] = published
        extra.update(fields.pop("extra", {}))
        parameters = sum(int(p.numel()) for p in built.model.parameters())
        return AdapterInfo(name=self.name, task=task, parameters=parameters, extra=extra, **fields)

    def bind_categories(self, dataset: DatasetInfo, classes: list[str]) -> None:
        """Model index i -> dataset.category_ids[i]; valid because check_compatible proved the names equal."""
        if dataset.category_ids and len(dataset.category_ids) != len(classes):
            raise BenchError(
                f"dataset {dataset.name!r} lists {len(dataset.classes)} classes but {len(dataset.category_ids)} category ids"
            )
        self._category_ids = np.asarray(dataset.category_ids or range(len(classes)), dtype=np.int64)

    def category_ids(self) -> np.ndarray:
        if self._category_ids is None:
            raise BenchError(
                f"model {self.name!r} has not been matched to a dataset yet: call check_compatible(dataset.info) "
                "before predict, so model class indices map to that dataset's category ids"
            )
        return self._category_ids

    def fingerprint(self) -> str:
        """Name, options, the fully resolved config and the weights' bytes: the same checkpoint under another
        config (or another ``_base_``) is another model."""
        import hashlib
        import json

        digest = hashlib.sha256(self.name.encode())
        for key, value in sorted(self.options.items()):
            shown = value.fingerprint() if isinstance(value, Adapter) else json.dumps(value, sort_keys=True, default=repr)
            digest.update(f"|{key}={shown}".encode())
        require_package(self.package)
        config = load_config(self.config_path, self.options.get("cfg_options"))
        digest.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
        if self.checkpoint is not None and self.checkpoint.is_file():
            with open(self.checkpoint, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]


class ClassListAdapter(OpenMMLabAdapter):
    """mmdet and mmseg models: a flat list of class names from the checkpoint or config, checked by name."""

    #: the LoadImage transform this package's test pipeline starts with (replaced to feed arrays)
    load_transform: str = ""

    def classes(self) -> list[str]:
        """Class names as trained (surrounding spaces dropped: mmseg's ADE20K list says 'bed ')."""
        return [str(c).strip() for c in self.built().metadata.get("classes") or []]

    def info(self) -> AdapterInfo:
        pipeline = test_pipeline_config(self.built().config, self.load_transform)
        return self.base_info(self.task, classes=self.classes(), input_size=resize_input_size(pipeline))

    def check_compatible(self, dataset: DatasetInfo) -> None:
        classes = self.classes()
        if not classes:
            raise BenchError(missing_metadata_message(self.name, "class names", self.config_path))
        super().check_compatible(dataset_view(dataset, classes))
        self.bind_categories(dataset, classes)


def predict_in_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
