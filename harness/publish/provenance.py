"""What a result was produced with: code version, packages, device, seed, command line."""
from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("bench", "numpy", "torch", "torchvision", "pycocotools", "opencv-python-headless", "mmdet", "mmpose",
            "mmsegmentation", "mmengine", "mmcv-lite")
REPO_ROOT = Path(__file__).resolve().parents[2]


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha, "git_dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_description(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({platform.processor() or platform.machine()})"


def torch_settings() -> dict[str, Any]:
    """The numerics settings torch ran under (cuDNN autotuning and determinism, TF32 for matmuls and
    convolutions, float32 matmul precision): they move GPU numbers in the last bits and the
    speed a lot.  Empty when torch was never imported (every prediction came from the cache): nothing ran."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    backends = torch.backends
    return {
        "cudnn_benchmark": bool(backends.cudnn.benchmark),
        "cudnn_deterministic": bool(backends.cudnn.deterministic),
        "cudnn_allow_tf32": bool(backends.cudnn.allow_tf32),
        "cuda_matmul_allow_tf32": bool(backends.cuda.matmul.allow_tf32),
        "float32_matmul_precision": str(torch.get_float32_matmul_precision()),
    }


def provenance(device: str, seed: int) -> dict[str, Any]:
    return {
        "torch_settings": torch_settings(),
        **git_state(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device_description(device),
        "seed": seed,
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
        "time_utc": utc_now(),
    }


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
