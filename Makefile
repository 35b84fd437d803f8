# infobench: every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

.PHONY: setup run test bench lint clean

setup: $(STAMP)

# torch goes in first with an exact pin so pip takes the CPU wheel on disk and never a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/infobench run experiments/quickstart.yaml

test: setup
	$(PY) -m pytest -p no:cacheprovider

bench: setup
	$(PY) benchmarks/run_all.py

lint: setup
	$(VENV)/bin/ruff check infobench tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache results/*/ 
