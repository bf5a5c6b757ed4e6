# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create the virtual environment (.venv) from the pinned constraints when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEPS    = pyproject.toml constraints.txt scripts/install_env.sh setup.py harness/metrics/coco/_ckernels.c

.PHONY: demo test env test-env clean-env

$(VENV)/.bench-base: $(DEPS)
	PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/install_env.sh base
	touch $@

$(VENV)/.bench-test: $(VENV)/.bench-base $(DEPS) scripts/install_openmmlab.sh scripts/install_browser.sh
	PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/install_env.sh test
	touch $@

env: $(VENV)/.bench-base
test-env: $(VENV)/.bench-test

demo: $(VENV)/.bench-base
	$(BIN)/bench run --task keypoints

test: $(VENV)/.bench-test
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

clean-env:
	rm -rf $(VENV)
