"""A content hash of committed weights, for checking that a full retrain reproduced them.

The bytes of a ``torch.save`` file are not reproducible (the archive carries a random serialization id), so the
digest covers what the file holds: every entry's name, dtype, shape and tensor bytes, in name order (nested
dicts entry by entry, other values as text).

``python -m adapters.inrepo.weights_digest --check LIST`` reads ``<digest>  <file>`` lines (files relative to
the list's folder) and exits 1 naming every file whose weights differ; ``--print FILE...`` prints such lines.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def state_digest(path: Path) -> str:
    import torch

    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    digest = hashlib.sha256()
    _update(digest, state, "")
    return digest.hexdigest()


def _update(digest, state: dict, prefix: str) -> None:
    """Every entry in name order: a tensor as name, dtype, shape and bytes; a nested dict (a detection
    checkpoint's ``network``) entry by entry under ``name.``; anything else (its ``kind``, ``classes``,
    ``category_ids``) as name and text.  A flat state dict hashes as it always did."""
    import torch

    from harness.core.fingerprint import stable_text

    for name in sorted(state):
        value = state[name]
        if isinstance(value, torch.Tensor):
            tensor = value.detach().contiguous().cpu()
            digest.update(f"{prefix}{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(value, dict):
            _update(digest, value, f"{prefix}{name}.")
        else:
            digest.update(f"{prefix}{name}|{stable_text(value)}|".encode())


def check(listing: Path) -> list[str]:
    """Files of ``listing`` whose weights differ from the recorded digest (or are missing)."""
    failures = []
    for line in Path(listing).read_text().splitlines():
        if not line.strip():
            continue
        recorded, name = line.split(maxsplit=1)
        path = Path(listing).parent / name.strip()
        if not path.is_file() or state_digest(path) != recorded:
            failures.append(name.strip())
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path)
    parser.add_argument("--print", dest="files", nargs="*", type=Path, default=[])
    args = parser.parse_args(argv)
    for path in args.files:
        print(f"{state_digest(path)}  {path.name}")
    if args.check is not None:
        failures = check(args.check)
        for name in failures:
            print(f"{name}: weights differ from the recorded digest", file=sys.stderr)
        if not failures:
            print(f"{args.check}: all weights match")
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
