"""CSV tables bench reads back (``leaderboards/throughput.csv``, leaderboard CSVs): parsed with one-line errors
naming the file, and with the columns a reader needs checked, instead of a pandas traceback."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from harness.core.errors import DataError


def read_csv(path: str | Path, required: Sequence[str] = (), numeric: Sequence[str] = (), **options: Any) -> Any:
    """``pandas.read_csv(path, **options)``; DataError when it is not a CSV, lacks a required column, or holds
    text in a column that must be numeric."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"malformed CSV ({' '.join(str(exc).split())[:160]})", path) from None
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise DataError(f"missing column {missing[0]!r}", path)
    for column in numeric:
        if column in table.columns:
            values = pd.to_numeric(table[column], errors="coerce")
            bad = values.isna() & table[column].notna()
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise DataError(f"row {row + 2}, column {column!r}: not a number: {table[column].iloc[row]!r}", path)
    return table
