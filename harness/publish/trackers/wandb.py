"""``--log wandb``: one Weights & Biases run per bench run.

Honours wandb's own environment (``WANDB_PROJECT``, ``WANDB_MODE=offline``, ``WANDB_DIR``); bench sets nothing
that would reach the network.  Metrics go to the run's summary and one history step, per-class tables as
``wandb.Table``, the gallery as ``wandb.Image`` entries, the identity as the run config.
"""
from __future__ import annotations

import os
from typing import Any

PACKAGE = "wandb"
INSTALL = "wandb"


def log(export: Any) -> str:
    import wandb

    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "bench"), name=export.run_name,
                     config=export.params(), tags=list(export.record.get("tags") or []) or None,
                     job_type="evaluation", reinit="finish_previous")
    try:
        metrics = export.metrics()
        run.log(metrics)
        for name, value in metrics.items():
            run.summary[name] = value
        for name, frame in export.tables().items():
            run.log({name: wandb.Table(dataframe=frame)})
        images = [wandb.Image(str(path), caption=path.stem) for path in export.gallery()]
        if images:
            run.log({"gallery": images})
        where = str(run.dir)
    finally:
        run.finish()
    return where
