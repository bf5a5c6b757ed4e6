#!/bin/sh
# Create the virtual environment and install bench with its test extra, every version pinned by constraints.txt.
set -eu
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24"
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]" --config-settings editable_mode=compat
