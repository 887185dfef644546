# Two entry points (see README): `make run` runs the main job, `make test` runs the test suite.
# Both create .venv and install the project with its pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install bench bench-baselines clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m gse_explain.evaluate $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/bench_gse.py $(ARGS)

# GSE vs. the six baselines on CIFAR-10 (about an hour on 2 CPU cores; resumes from runs/bench-baselines/).
bench-baselines: $(STAMP)
	$(PY) bench/bench_baselines.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
