#!/bin/sh
# Create the virtual environment and install bench, every version pinned by constraints.txt.
#   install_env.sh base   bench itself (enough for `bench run`)
#   install_env.sh test   + OpenMMLab (with xtcocotools built from source), the trackers of `bench run --log`,
#                         the test oracles and headless
#                         Chromium, the example plugin (examples/bench-plugin-example): everything `make test` needs
set -eu
MODE=${1:-base}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
PIP="$VENV/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
$PIP -e . --config-settings editable_mode=compat
if [ "$MODE" = "test" ]; then
    sh scripts/install_openmmlab.sh "$VENV"   # first: it builds xtcocotools, which the test extra lists
    $PIP -e ".[test,openmmlab,trackers]" --config-settings editable_mode=compat
    # the documented plugin example: tests run it through its entry points (tests/cli/test_plugins.py)
    $PIP --no-build-isolation -e examples/bench-plugin-example --config-settings editable_mode=compat
    # TIDE oracle without its declared opencv-python (it would replace opencv-python-headless)
    $PIP --no-deps tidecv
    sh scripts/install_browser.sh
fi
