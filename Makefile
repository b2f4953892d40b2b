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

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip repeats a harmless line for every package when a configured find-links folder lacks it.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

PY := $(VENV)/bin/python
PY_LATEST := $(VENV_LATEST)/bin/python
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-latest lint install install-latest bench bench-demo-teacher bench-demo-student clean

# torch first: any later unpinned `torch` requirement would otherwise pull a CUDA build.
# Leg 2 upgrades everything eagerly except torch, which stays on TORCH_SPEC: the newest
# torch release is a CUDA build (~5.5 GB with its GPU libraries) that ran CI out of disk.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC) $(QUIET_PIP)
	$(PY) -m pip install -q -c constraints.txt -e ".[export,dev]" $(QUIET_PIP)
	$(PY) -c "import hf_quads, optimum.onnxruntime"
	touch $@

$(VENV_LATEST)/.installed: pyproject.toml
	test -x $(PY_LATEST) || $(PYTHON) -m venv $(VENV_LATEST)
	$(PY_LATEST) -m pip install -q $(TORCH_SPEC) $(QUIET_PIP)
	$(PY_LATEST) -m pip install -q --upgrade --upgrade-strategy eager -e ".[dev]" "transformers>=5,<6" $(TORCH_SPEC) $(QUIET_PIP)
	$(PY_LATEST) -c "import hf_quads, torch, transformers; assert transformers.__version__ >= '5'; assert torch.version.cuda is None, 'leg 2 pulled a CUDA build of torch'"
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

# Synthesises the corpus if absent, trains, compresses, exports and prints the QUADS-style table.
demo: $(VENV)/.installed
	$(VENV)/bin/hf-quads demo --output_dir $(DEMO_OUT)

# Speed and size claims: each script measures side by side and writes benchmarks/results/*.json.
bench: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e ".[bench]" $(QUIET_PIP)
	$(PY) benchmarks/quantizer_step.py
	$(PY) benchmarks/trainer_overhead.py
	$(PY) benchmarks/pruning_cost.py
	$(PY) benchmarks/export_latency.py
	$(PY) benchmarks/teacher_step.py

# The demo teacher under other training settings (dev/test accuracy per voice): the record
# behind benchmarks/README.md's teacher section. About 2 hours on 2 cores (22 settings, two at a time).
bench-demo-teacher: $(VENV)/.installed
	$(PY) benchmarks/demo_teacher.py

# The demo's whole training (teacher, students at 32/8/4/2 bits) with three training seeds:
# the record behind benchmarks/README.md's per-seed student table. About 30 minutes on 2 cores
# (about 14 minutes a run, two at a time).
bench-demo-student: $(VENV)/.installed
	$(PY) benchmarks/demo_student.py --settings baseline --seeds 0 1 2

clean:
	rm -rf $(VENV) $(VENV_LATEST) .pytest_cache .ruff_cache build *.egg-info
