# oodbook — the two commands a user needs: `make book` and `make test`.
# Everything installs into .venv from PyPI; Fashion-MNIST comes from Debian's
# dataset-fashion-mnist package (apt, when running as root on Debian).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# `make test` trains every model afresh in its own cache, so CI never passes on
# a checkpoint left over from an older run.
TEST_CACHE := $(CURDIR)/_build/test-cache
# `make smoke`: every chapter under the smoke profile (full's code paths at toy sizes) on synthetic
# files in torchvision's formats, in a cache and data root of its own; with the papers' own settings
# (oodlib.paper_settings: MNIST, SVHN, CIFAR, their networks and recipes) at toy sizes.
SMOKE_DIR := $(CURDIR)/_build/smoke
BOOK_ENV := OODLIB_PROFILE=$${OODLIB_PROFILE:-ci} OODLIB_PROGRESS=text OODLIB_WIDGETS=off

.PHONY: install data browser test smoke unit book book-noexec lab bench bench-eval gpu-check lint clean

install: $(STAMP) data browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,book,lab]'
	touch $(STAMP)

data:
	@if [ -f "$(FMNIST)" ] || [ -n "$$OODLIB_DOWNLOAD" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'"; \
	  echo "or allow a torchvision download with OODLIB_DOWNLOAD=1"; exit 1; \
	fi

# Debian's chromium for the site test (a headless reader of the built book); elsewhere that test skips
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$OODLIB_BROWSER" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium (the site test opens the built book in it)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
	  echo "chromium is missing: the site test's browser checks will be skipped"; \
	  echo "(install it with 'sudo apt-get install chromium' or point OODLIB_BROWSER at a Chromium)"; \
	fi

test: install
	rm -rf $(TEST_CACHE)
	OODLIB_CACHE=$(TEST_CACHE) OODLIB_PROFILE=ci OODLIB_PROGRESS=off OODLIB_WIDGETS=off \
	  $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider \
	  --site --durations=20
	$(MAKE) --no-print-directory smoke

# As under full, no chapter trains in a cell: `zoo train` trains the plan first (oodlib.zoo_plan), then
# every chapter runs with OODLIB_ZOO_TRAIN=never, so a model missing from the plan stops its chapter.
SMOKE_ENV := OODLIB_DATA=$(SMOKE_DIR)/data OODLIB_CACHE=$(SMOKE_DIR)/zoo OODLIB_PROFILE=smoke OODLIB_PROGRESS=off

smoke: install
	rm -rf $(SMOKE_DIR)
	$(PY) -m oodlib synthetic-data $(SMOKE_DIR)/data --train-images 64 --extra
	$(SMOKE_ENV) $(PY) -m oodlib zoo train --profile smoke
	$(SMOKE_ENV) $(PY) -m oodlib zoo train --profile smoke --settings
	$(SMOKE_ENV) OODLIB_ZOO_TRAIN=never OODLIB_WIDGETS=off $(PY) -m pytest notebooks --nbval-lax \
	  --nbval-current-env -p no:cacheprovider --durations=9 -q

# the unit tests alone (no notebooks; the book build, the site and the Lab tests need --site)
unit: install
	OODLIB_PROGRESS=off $(PY) -m pytest tests -q

# -W -n --keep-going: a failing cell or any build warning fails the build (the site test's flags),
# after every chapter was tried, so the log names each failing chapter and cell
book: install
	$(BOOK_ENV) $(VENV)/bin/jupyter-book build . --toc book/_toc.yml --config _config.yml -W -n --keep-going
	@echo "open _build/html/index.html"

# JupyterLab with jupyterlab-myst (installed by `install`: tests/test_lab.py opens a chapter in it)
lab: install
	$(VENV)/bin/jupyter lab notebooks/

bench: install
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_ibp.py

# chapter 07's evaluation cost per model (uses the zoo; trains what is missing)
bench-eval: install
	$(PY) benchmarks/bench_eval.py

# on a lent GPU: every full method and kernel timed, CUDA checked against the CPU (benchmarks/gpu_check.py)
gpu-check: install
	$(PY) benchmarks/gpu_check.py --device cuda --out _build/gpu_check

lint: install
	$(VENV)/bin/ruff check oodlib tests benchmarks

clean:
	rm -rf _build .pytest_cache
