# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create the virtual environment (.venv) from the pinned constraints when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEPS    = pyproject.toml constraints.txt scripts/install_env.sh

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

# Full retrains of committed in-repo weights (seed 0, one thread), checked against the recorded content digests
# (adapters/weights/*.sha256; torch.save bytes carry a random id, so the digest hashes the tensors).
.PHONY: retrain-pose
retrain-pose: $(VENV)/.bench-base
	OMP_NUM_THREADS=1 $(BIN)/bench train --task keypoints --model hourglass --threads 1
	OMP_NUM_THREADS=1 $(BIN)/bench train --task keypoints --model openpose --dataset coco-multi --threads 1
	$(BIN)/python -m adapters.inrepo.weights_digest --check adapters/weights/keypoints_classics.sha256
