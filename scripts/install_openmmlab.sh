#!/bin/sh
# Install OpenMMLab (mmengine, mmcv-lite, mmdet, mmpose, mmsegmentation) into an existing bench venv.
#
#   sh scripts/install_openmmlab.sh [VENV]        (default: .venv)
#
# Full mmcv does not compile against our torch, so we install mmcv-lite (no compiled ops) and the mm* packages
# with --no-deps; bench's adapters register a torchvision-backed stand-in for mmcv._ext (adapters/openmmlab/
# _ext_shim.py).  xtcocotools is built from source because its wheels target numpy 1.  Safe to re-run: every
# step is a no-op when already satisfied.  Details: DEVELOPERS.md, "OpenMMLab and torchvision models".
set -eu
VENV=${1:-${VENV:-.venv}}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "install_openmmlab.sh: no python at $PY; create the environment first (make env)" >&2
    exit 2
fi
PIP="$PY -m pip install --quiet --disable-pip-version-check -c $ROOT/constraints.txt"

# 1. Pure-Python needs, read from the `openmmlab` extra of pyproject.toml (single source of truth), pinned
#    against constraints.txt so numpy/torch never move.
REQUIREMENTS=$(mktemp)
trap 'rm -f "$REQUIREMENTS"' EXIT
"$PY" - "$ROOT/pyproject.toml" >"$REQUIREMENTS" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as handle:
    print("\n".join(tomllib.load(handle)["project"]["optional-dependencies"]["openmmlab"]))
EOF
$PIP -r "$REQUIREMENTS"

# 2. xtcocotools (mmpose's COCO keypoint API) compiled against the venv's numpy.
if ! "$PY" -c "import xtcocotools._mask" 2>/dev/null; then
    $PIP --no-binary xtcocotools --no-build-isolation "xtcocotools==1.14.3"
fi

# 3. The OpenMMLab packages themselves, without their declared deps (full mmcv, opencv-python, chumpy).
$PIP --no-deps mmengine==0.10.7 mmcv-lite==2.1.0 mmdet==3.3.0 mmpose==1.3.2 mmsegmentation==1.2.2

# 4. mmsegmentation's wheel ships its own test suite as a top-level `tests` package, which would shadow the
#    project's tests/ (a regular package wins over a namespace package): remove exactly those files.
"$PY" - <<'EOF'
import importlib.metadata, pathlib, shutil
dist = importlib.metadata.distribution("mmsegmentation")
if any(str(f).startswith("tests/") for f in dist.files or []):
    shutil.rmtree(pathlib.Path(dist.locate_file("tests")), ignore_errors=True)
EOF

# 5. Prove the stack imports through our mmcv._ext stand-in.
cd "$ROOT"
"$PY" -c "
from adapters.openmmlab._ext_shim import install_ext_shim
install_ext_shim()
import mmdet.models, mmpose.models, mmseg.models, xtcocotools.coco
print('OpenMMLab ready: mmdet', __import__('mmdet').__version__, '| mmpose', __import__('mmpose').__version__,
      '| mmseg', __import__('mmseg').__version__)
"
