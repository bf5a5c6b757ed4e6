# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create the virtual environment (.venv) from the pinned constraints when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEPS    = pyproject.toml constraints.txt scripts/install_env.sh setup.py harness/metrics/coco/_ckernels.c \
          harness/metrics/_streamkernels.c harness/metrics/numpy_sum.h

.PHONY: demo test env test-env clean-env retrain-classics

$(VENV)/.bench-base: $(DEPS)
	PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/install_env.sh base
	touch $@

$(VENV)/.bench-test: $(VENV)/.bench-base $(DEPS) scripts/install_openmmlab.sh scripts/install_browser.sh \
                      examples/bench-plugin-example/pyproject.toml
	PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/install_env.sh test
	touch $@

env: $(VENV)/.bench-base
test-env: $(VENV)/.bench-test

demo: $(VENV)/.bench-base
	$(BIN)/bench run --task keypoints

test: $(VENV)/.bench-test
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

clean-env:
	rm -rf $(VENV)

# Retrain the classic-family in-repo models (PSPNet, YOLO, SSD, RetinaNet, DETR, Mask R-CNN) from seed 0 on one
# thread, each into its committed weights file, then check the files against their recorded content digests
# (adapters/inrepo/weights_digest.py; torch.save bytes carry a random id, so a file hash never matches): the same build
# reproduces them bit for bit.  About an hour of one CPU core.
CLASSIC_SEMANTIC  = pspnet pspnet:cityscapes pspnet:ade20k
CLASSIC_DETECTION = yolo ssd retinanet detr
CLASSIC_INSTANCE  = mask-rcnn

retrain-classics: $(VENV)/.bench-base
	for entry in $(CLASSIC_SEMANTIC); do model=$${entry%%:*}; dataset=$${entry#*:}; \
	  [ "$$dataset" = "$$entry" ] && dataset=voc; \
	  OMP_NUM_THREADS=1 $(BIN)/bench train --task semantic --model $$model --dataset $$dataset --val-split '' || exit 1; done
	for model in $(CLASSIC_DETECTION); do \
	  OMP_NUM_THREADS=1 $(BIN)/bench train --task detection --model $$model --val-split '' || exit 1; done
	for model in $(CLASSIC_INSTANCE); do \
	  OMP_NUM_THREADS=1 $(BIN)/bench train --task instance --model $$model --val-split '' || exit 1; done
	$(BIN)/python -m adapters.inrepo.weights_digest --check adapters/weights/classics.sha256

# Full retrains of committed in-repo weights (seed 0, one thread), checked against the recorded content digests
# (adapters/weights/*.sha256; torch.save bytes carry a random id, so the digest hashes the tensors).
.PHONY: retrain-pose
retrain-pose: $(VENV)/.bench-base
	OMP_NUM_THREADS=1 $(BIN)/bench train --task keypoints --model hourglass --threads 1
	OMP_NUM_THREADS=1 $(BIN)/bench train --task keypoints --model openpose --dataset coco-multi --threads 1
	$(BIN)/python -m adapters.inrepo.weights_digest --check adapters/weights/keypoints_classics.sha256
