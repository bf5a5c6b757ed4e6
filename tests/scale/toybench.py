"""`bench` with the toy task registered: what the distributed test launches under torchrun."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the worktree's harness/ and adapters/

import toyplugin  # noqa: E402,F401  (registers the toy task, dataset, metrics and adapters)
from harness.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
