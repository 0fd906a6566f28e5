# replearn — set-up, demo, tests.  `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# On a machine without an NVIDIA GPU take the CPU build of torch that lies on disk;
# on a GPU machine pip resolves torch by the normal route (a CUDA build).
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo "torch>=2.2" || echo "torch==2.13.0")

.PHONY: install demo test test-fast lint format bench clean
.PHONY: docs

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/replearn demo

test: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) -m pytest -q

test-fast: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: install
	$(PY) benchmarks/bench_one_step.py

# The docs extras (Sphinx, the theme, sphinx-gallery, MyST, sphinx-argparse) have their own
# stamp: `make docs` builds docs/_build/html with warnings as errors, executing the gallery.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev,ray,docs]"
	touch $@

docs: $(VENV)/.docs-installed
	MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
