"""Which machine a speed was measured on: throughput numbers compare only on the same machine.

The fingerprint is what moves images/s without the model changing: the CPU model and core count, the torch
version and the accelerator's name.  ``machine_key`` hashes it into a short id (``cpu-3f2a...``, ``cuda-...``)
that keys ``leaderboards/throughput.csv`` rows and the per-machine throughput baselines.
"""
from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")


def cpu_model() -> str:
    """The CPU's marketing name (``model name`` in /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return ""


def accelerator_name(device: str) -> str:
    """The GPU's name for a ``cuda`` device (imports torch then only), ``cpu`` otherwise."""
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(device))
    return "cpu"


def machine_fingerprint(device: str = "cpu") -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 0, "torch": torch_version(),
            "device": accelerator_name(device)}


def machine_key(fingerprint: dict[str, Any]) -> str:
    """A short, stable id of the fingerprint: ``<device kind>-<12 hex digits>``."""
    text = "|".join(f"{key}={fingerprint.get(key, '')}" for key in ("cpu", "cores", "torch", "device"))
    kind = "cpu" if fingerprint.get("device", "cpu") == "cpu" else "cuda"
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
