# Two commands do all the set-up on a fresh machine:
#   make demo   the main job on the embedded synthetic data
#   make test   lint + the test suite (CI leg 1)
# `make test-latest` is CI leg 2: the newest releases (transformers 5.x), no `export` extra.

PYTHON ?= python3
VENV ?= .venv
VENV_LATEST ?= .venv-latest
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
DEMO_OUT ?= outputs/demo

PY := $(VENV)/bin/python
PY_LATEST := $(VENV_LATEST)/bin/python
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-latest lint install install-latest clean

# torch first: any later unpinned `torch` requirement would otherwise pull a CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -c constraints.txt -e ".[export,dev]"
	touch $@

$(VENV_LATEST)/.installed: pyproject.toml
	test -x $(PY_LATEST) || $(PYTHON) -m venv $(VENV_LATEST)
	$(PY_LATEST) -m pip install -q $(TORCH_SPEC)
	$(PY_LATEST) -m pip install -q --upgrade --upgrade-strategy eager -e ".[dev]" "transformers>=5,<6"
	touch $@

install: $(VENV)/.installed
install-latest: $(VENV_LATEST)/.installed

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	@$(PY) .ci/pytest_leg.py $(PYTEST_ARGS)

test-latest: $(VENV_LATEST)/.installed
	@$(PY_LATEST) .ci/pytest_leg.py $(PYTEST_ARGS)

demo: $(VENV)/.installed
	$(VENV)/bin/hf-quads data synth --out data/synth_fsc --seed 0

clean:
	rm -rf $(VENV) $(VENV_LATEST) .pytest_cache .ruff_cache build *.egg-info
