"""How long `bench models list` takes, in a fresh process each time (imports included): it must stay a
one-second-class answer, because it never builds a network.  Run: python benchmarks/models_list.py [repeats]"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time


def main(repeats: int = 3) -> None:
    for args in (["models", "list", "--json"], ["models", "list", "--task", "detection", "--json"]):
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "harness.cli", *args], check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
        print(f"bench {' '.join(args)}: median {statistics.median(seconds):.2f} s over {repeats} runs "
              f"(min {min(seconds):.2f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
