"""Output helpers shared by subcommands (no commands here)."""
from __future__ import annotations

from rich.console import Console


def wide_console() -> Console:
    """The shared console on a terminal; a 200-column one in logs and pipes, where 80 columns would wrap tables."""
    from harness.console import console

    return console() if console().is_terminal else Console(width=200)
