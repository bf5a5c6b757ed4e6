"""``--log mlflow``: one MLflow run per bench run, in the tracking store MLflow is configured with
(``MLFLOW_TRACKING_URI``, e.g. ``file:/path/mlruns``; experiment ``MLFLOW_EXPERIMENT_NAME`` or "bench").

Metrics as MLflow metrics (names sanitised: ``AP@0.5`` -> ``AP_0.5``, the original kept in a tag), the identity as
params, per-class tables as ``tables/<name>.json`` (``mlflow.log_table``) and the gallery as artifacts under
``gallery/``.
"""
from __future__ import annotations

import os
import re
from typing import Any

PACKAGE = "mlflow"
INSTALL = "mlflow-skinny"


def metric_name(name: str) -> str:
    """MLflow accepts letters, digits, ``_ - . / space``; anything else becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)


def check() -> None:
    """Open the tracking store before any model runs: MLflow 3 refuses a ``file:`` store unless
    ``MLFLOW_ALLOW_FILE_STORE=true``, and a ``sqlite:`` store needs SQLAlchemy (not in mlflow-skinny)."""
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient().search_experiments(max_results=1)
    except Exception as exc:
        text = str(exc)
        if "MLFLOW_ALLOW_FILE_STORE" in text:
            text = "MLflow 3 refuses a file: tracking store unless MLFLOW_ALLOW_FILE_STORE=true (or use a database URI)"
        raise RuntimeError(f"cannot open the tracking store {_uri()}: {text}") from exc


def _uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


def log(export: Any) -> str:
    import mlflow

    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "bench"))
    with mlflow.start_run(run_name=export.run_name) as run:
        mlflow.log_params({key: value[:500] for key, value in export.params().items()})
        mlflow.log_metrics({metric_name(name): value for name, value in export.metrics().items()})
        for name, frame in export.tables().items():
            mlflow.log_table(frame, artifact_file=f"tables/{metric_name(name)}.json")
        for path in export.gallery():
            mlflow.log_artifact(str(path), artifact_path="gallery")
        return f"{mlflow.get_tracking_uri()} run {run.info.run_id}"
