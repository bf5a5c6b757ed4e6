"""Run ``bench`` in a child process under an address-space limit and a timeout, for inputs that could crash
natively (a SIGSEGV in a C extension) or exhaust memory: the test then sees an exit status, not a dead worker."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADDRESS_SPACE = 2 << 30  # 2 GiB
TIMEOUT = 30.0


@dataclass
class Outcome:
    code: int | None  # None: timed out
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_bench(args: list[str], cwd: Path | None = None, timeout: float = TIMEOUT,
              env: dict[str, str] | None = None) -> Outcome:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200",
                   **(env or {})}
    try:
        done = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                              cwd=cwd or ROOT, env=environment, preexec_fn=_limit, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, str(exc.stdout or ""), str(exc.stderr or ""))
    return Outcome(done.returncode, done.stdout, done.stderr)
