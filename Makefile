# Two entry points (see README): `make run` runs the main job (the offline demo study: attacks, then Figures 1-5 and
# Tables 1-4 in figures/demo/), `make test` runs the test suite and the notebooks (small settings).
# Both create .venv and install the project with its pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run evaluate test install install-adv-lib notebook bench bench-baselines clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m gse_explain.figures $(ARGS)

evaluate: $(STAMP)
	$(PY) -m gse_explain.evaluate $(ARGS)

# The notebooks run top to bottom (nbmake) on small settings taken from these variables.
NOTEBOOK_ENV := GSE_NB_IMAGE_SIZE=128 GSE_NB_ITERATIONS=50 GSE_NB_IMAGES=2 GSE_NB_TARGETED_IMAGES=2 GSE_NB_OFFSETS=1,2 \
	GSE_NB_FAST=1 GSE_NB_ATTACKS=gse,pgd0 MPLBACKEND=Agg OMP_NUM_THREADS=1

test: $(STAMP)
	$(NOTEBOOK_ENV) $(PY) -m pytest -q --nbmake tests notebooks $(PYTEST_ARGS)

# JupyterLab on notebooks/ (installs the [notebooks] extra once: jupyterlab, ipywidgets).
NOTEBOOK_STAMP := $(VENV)/.notebooks-stamp
$(NOTEBOOK_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,notebooks]"
	touch $(NOTEBOOK_STAMP)

notebook: $(NOTEBOOK_STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ARGS)

# The optional adv-lib attacks (--attack adv_lib:fmn, adv_lib:sigma_zero, adv_lib:vfga): the [adv_lib] extra.
# adv-lib imports visdom (only for its optional logger), whose sdist has no wheel and whose setup.py needs
# pkg_resources (gone from setuptools 81): build that wheel once with setuptools<81 in pip's isolated build
# environment (PIP_CONSTRAINT applies there; the venv's own setuptools is not touched), then install the extra.
ADV_LIB_WHEELS := $(VENV)/adv-lib-wheels
ADV_LIB_STAMP := $(VENV)/.adv-lib-stamp
$(ADV_LIB_STAMP): $(STAMP)
	mkdir -p $(ADV_LIB_WHEELS)
	echo "setuptools<81" > $(ADV_LIB_WHEELS)/build-constraints.txt
	PIP_CONSTRAINT=$(ADV_LIB_WHEELS)/build-constraints.txt $(PY) -m pip wheel --quiet --no-deps "visdom==0.2.4" -w $(ADV_LIB_WHEELS)
	$(PY) -m pip install --quiet $(ADV_LIB_WHEELS)/visdom-0.2.4-py3-none-any.whl -e ".[adv_lib]"
	touch $(ADV_LIB_STAMP)

install-adv-lib: $(ADV_LIB_STAMP)

bench: $(STAMP)
	$(PY) bench/bench_gse.py $(ARGS)

# GSE vs. the six baselines on CIFAR-10 (about an hour on 2 CPU cores; resumes from runs/bench-baselines/).
bench-baselines: $(STAMP)
	$(PY) bench/bench_baselines.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
