"""Options shared by several subcommands, declared once."""
from __future__ import annotations

from pathlib import Path

import click

from harness.io.validation import cli as checks

TASK = click.option("--task", "task_name", required=True, help="Task name, e.g. keypoints, detection, semantic, flow.")
DATASET = click.option("--dataset", "dataset_name", default=None, help="Dataset name (default: the task's default).")
DATA_ROOT = click.option(
    "--data-root", type=click.Path(path_type=Path), default=None,
    help="Where the dataset lives in its native layout (default: the embedded mini dataset).",
)
SPLIT = click.option("--split", default=None, help="Dataset split (default: the reader's validation split).")
DEVICE = click.option("--device", default="cpu", show_default=True, callback=checks.device,
                      help="torch device, e.g. cpu, cuda, cuda:1 (checked up front).")
CHECKPOINT = click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Local weights file.")
TRUST = click.option("--trust-checkpoint", is_flag=True, help="Allow checkpoints that need full unpickling.")
