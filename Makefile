# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create the virtual environment (.venv) from the pinned constraints when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.bench-installed

.PHONY: demo test env clean-env

$(STAMP): pyproject.toml constraints.txt scripts/install_env.sh
	PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/install_env.sh
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/bench run --task keypoints

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

clean-env:
	rm -rf $(VENV)
