"""mmseg semantic segmenters: ``--model mmseg:CONFIG``.

The label map comes back at the original image size in the model's class-index space; ``check_compatible``
requires the dataset to list the same classes in the same order, so that space is the dataset's.

Batch-sensitive only through rounding: batches hold images of one size (``max_batch``, default 4), so no
image is padded to another's size; one image per pass gives ``mmseg.apis.inference_model``'s label maps
exactly (``tests/adapters/test_parity_openmmlab.py``).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from harness.core.catalog import ADAPTERS
from adapters.openmmlab._common import (
    ClassListAdapter,
    bgr,
    class_metainfo_from_config,
    predict_in_chunks,
    test_pipeline_config,
)
from harness.core.errors import BenchError
from harness.core.structures import Sample, SemanticPrediction


@ADAPTERS.register("mmseg:")
class MMSegSegmenter(ClassListAdapter):
    package = "mmseg"
    scope = "mmseg"
    load_transform = "LoadImageFromNDArray"
    task = "semantic"
    #: images per forward pass; batches hold images of one size only (no padding to a larger image), so
    #: batching changes only the rounding
    default_max_batch = 4
    _compose: Any = None

    def build_model(self, config: Any) -> Any:
        from mmseg.registry import MODELS

        config.model.train_cfg = None
        return MODELS.build(config.model)

    def metadata_from_config(self, config: Any) -> dict[str, Any] | None:
        import mmseg.datasets  # noqa: F401  (registers the dataset classes)
        from mmseg.registry import DATASETS

        return class_metainfo_from_config(config, DATASETS)

    def validate_metadata(self, config: Any, metadata: dict[str, Any]) -> None:
        outputs = config.model.get("decode_head", {})
        outputs = outputs[-1] if isinstance(outputs, list) else outputs  # cascade decoders: the last one decides
        count = outputs.get("num_classes") if isinstance(outputs, dict) else None
        classes = list(metadata.get("classes") or [])
        if isinstance(count, int) and classes and count != len(classes) and not (count == 1 and len(classes) == 2):
            raise BenchError(f"model {self.name!r}: its decode head predicts {count} classes but its metadata names {len(classes)}")


    def _pipeline(self) -> Any:
        if self._compose is None:
            from mmcv.transforms import Compose

            with self.scope_context():
                self._compose = Compose(test_pipeline_config(self.built().config, "LoadImageFromNDArray"))
        return self._compose

    def predict(self, samples: Sequence[Sample]) -> list[SemanticPrediction]:
        import torch
        from mmengine.dataset import pseudo_collate

        model = self.built().model
        pipeline = self._pipeline()
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        images = [bgr(sample) for sample in samples]
        for index, image in enumerate(images):
            by_size[image.shape].append(index)
        label_maps: dict[int, np.ndarray] = {}
        with self.scope_context(), torch.no_grad():
            for indices in by_size.values():
                for chunk in predict_in_chunks(indices, self.max_batch()):
                    batch = pseudo_collate([pipeline({"img": images[i]}) for i in chunk])
                    for index, result in zip(chunk, model.test_step(batch)):
                        label_maps[index] = result.pred_sem_seg.data[0].detach().cpu().numpy().astype(np.int32)
        return [SemanticPrediction(label_map=label_maps[i]) for i in range(len(samples))]
