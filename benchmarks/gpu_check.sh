#!/usr/bin/env bash
# The GPU paths of bench on a real CUDA machine, one verdict line per check (benchmarks/gpu_checks.py):
# CUDA-event timing, pinned non-blocking transfers, reserved memory, out-of-memory back-off, fp32/fp16/bf16
# throughput, `bench run --device cuda`, and torchrun over nccl with 2 processes when 2 devices are visible.
#
#   sh benchmarks/gpu_check.sh              # from the repository root; uses .venv/bin/python when present
#   BENCH_PYTHON=/path/to/python sh benchmarks/gpu_check.sh
#
# Without a CUDA device it prints "skipped: no CUDA device" and exits 0.  Exit 1 when any check failed.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
python="${BENCH_PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python="python3"; fi
fi
probe="$("$python" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0, torch.__version__)' 2>&1)"
if [ $? -ne 0 ]; then
    echo "gpu_check: cannot import torch with $python: $(printf '%s' "$probe" | tail -n 1)" >&2
    exit 2
fi
count="${probe%% *}"
version="${probe#* }"
if [ "$count" = "0" ]; then
    echo "skipped: no CUDA device (torch $version)"
    exit 0
fi
cd "$root" && PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" "$here/gpu_checks.py"
