"""Reading YAML (suites, baselines) with one-line errors that name the file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import DataError


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed document; ``what`` names the file's role in the not-found message (e.g. "suite file")."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found", path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except RecursionError:
        raise DataError("malformed YAML: nested deeper than the parser's recursion limit", path) from None
    except yaml.YAMLError as exc:
        raise DataError(f"malformed YAML: {' '.join(str(exc).split())}", path) from None
