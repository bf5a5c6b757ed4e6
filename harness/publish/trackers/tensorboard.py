"""``--log tensorboard``: event files under ``$BENCH_TENSORBOARD_DIR`` (default ``runs/``) / ``<run id>``.

Written with torch's ``SummaryWriter`` (needs the ``tensorboard`` package, which also reads them back): each
metric a scalar at step 0 (``metrics/AP``), the identity and each per-class table as text (a Markdown table),
each per-class value a scalar (``per_class/AP/person``), the gallery as images (``gallery/<file>``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PACKAGE = "tensorboard"
INSTALL = "tensorboard"


def log(export: Any) -> str:
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(os.environ.get("BENCH_TENSORBOARD_DIR", "runs")) / export.run_name
    writer = SummaryWriter(log_dir=str(folder))
    try:
        for name, value in export.metrics().items():
            writer.add_scalar(f"metrics/{name}", value, 0)
        writer.add_text("identity", "\n".join(f"- **{k}**: {v}" for k, v in export.params().items()), 0)
        for name, frame in export.tables().items():
            writer.add_text(name, frame.to_markdown(index=False) if _has_tabulate() else frame.to_csv(index=False), 0)
            for column in frame.columns[1:]:
                for label, value in zip(frame["class"], frame[column]):
                    if value is not None and value == value:
                        writer.add_scalar(f"per_class/{column}/{label}", float(value), 0)
        for path in export.gallery():
            with Image.open(path) as image:
                writer.add_image(f"gallery/{path.stem}", np.asarray(image.convert("RGB")), 0, dataformats="HWC")
    finally:
        writer.close()
    return str(folder)


def _has_tabulate() -> bool:
    import importlib.util

    return importlib.util.find_spec("tabulate") is not None
