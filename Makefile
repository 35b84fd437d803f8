# infobench: every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
# torchvision from PyPI needs the torch build it was made for: on this machine's CPU-only torch
# 2.13 its compiled ops fail to load, so the vision extra is tested in a venv of its own with the
# pair pip finds on disk here (the upper end of the torch range pyproject.toml declares)
VISION_VENV := .venv-vision
VISION_PY   := $(VISION_VENV)/bin/python
VISION_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: setup setup-vision run test test-vision bench lint clean reproduce

setup: $(STAMP)

# torch goes in first with an exact pin so pip takes the CPU wheel on disk and never a CUDA build;
# the optional tracking sinks are installed so that their tests run (the core needs neither).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e ".[dev,mlflow,tensorboard]"
	touch $(STAMP)

setup-vision: $(VISION_VENV)/.installed

$(VISION_VENV)/.installed: pyproject.toml
	test -x $(VISION_PY) || $(PYTHON) -m venv $(VISION_VENV)
	$(VISION_PY) -m pip install -q --upgrade pip
	$(VISION_PY) -c "import torchvision" 2>/dev/null || $(VISION_PY) -m pip install -q $(VISION_PINS)
	$(VISION_PY) -m pip install -q -e ".[dev,vision]"
	touch $@

run: setup
	$(VENV)/bin/infobench run experiments/quickstart.yaml

test: setup
	$(PY) -m pytest -p no:cacheprovider

# the tests that need torchvision/timm, and the model and data tests, with the vision extra
# installed (make test runs everything without it; those tests skip there, saying why)
test-vision: setup-vision
	$(VISION_PY) -m pytest -p no:cacheprovider tests/models tests/data tests/test_real_scale.py tests/test_real_experiments.py

bench: setup
	$(PY) benchmarks/run_all.py

# every shipped experiment at full size (hours: run it in the background), then docs/reproduction.md
# from their claims tables; the four real-data experiments run only when their files are under
# $INFOBENCH_DATA (the page lists the skipped ones). Options for `infobench run` go in
# REPRODUCE_ARGS, e.g. make reproduce REPRODUCE_ARGS="--jobs 2 --device cuda"
reproduce: setup
	$(PY) -m infobench.report.reproduction $(REPRODUCE_ARGS)

lint: setup
	$(VENV)/bin/ruff check infobench tests benchmarks

clean:
	rm -rf $(VENV) $(VISION_VENV) build *.egg-info .pytest_cache results/*/ 
