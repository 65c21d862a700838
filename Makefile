# Each target installs what it needs into a local virtual environment ($(VENV),
# made with $(PYTHON)) the first time, and again when pyproject.toml changes:
#   make demo    installs chainrule with the viz and symbolic extras, runs the worked example,
#                python -m chainrule tutorial (its pictures go to tutorial-out/)
#   make lint    installs the test, viz and examples extras, then runs ruff check,
#                ruff format --check (on src tests examples bench) and mypy
#   make test    make lint, make docs, make wheel-check, then the whole pytest suite
#                (tests, the doctests of src and docs, and the notebooks, each run in
#                a fresh kernel)
#   make docs    installs the docs extra and builds the documentation site with
#                mkdocs build --strict (a broken link or reference fails) into site/
#   make wheel-check  installs the package extra (build, twine), builds the sdist
#                and from it the wheel into $(WHEEL_DIR)/dist, runs twine check on
#                both, installs the wheel (not editable) into a new virtual
#                environment and runs python -m chainrule tutorial there
#   make bench   installs the bench extra (PyTorch, HIPS autograd, micrograd) and
#                runs python -m bench $(BENCH_ARGS); see docs/performance.md
#   make clean   removes $(VENV), site/, $(WHEEL_DIR) and the caches of pytest, mypy,
#                ruff and hypothesis
# The checks of make lint also run before each commit once `pre-commit install`
# has been run (see .pre-commit-config.yaml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
WHEEL_DIR ?= build/wheel-check

.PHONY: demo test lint docs bench clean wheel-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[viz,symbolic]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,viz,examples,notebooks]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python -m chainrule tutorial

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy

test: lint docs wheel-check
	$(BIN)/python -m pytest

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The package as a user gets it.  --no-isolation builds with the setuptools of
# $(VENV) (the package extra requires the version pyproject.toml's build-system
# asks for, and build checks it) instead of downloading it into two throwaway
# environments; what is installed and run is still the built wheel, in a new
# environment, run with -I so that neither PYTHONPATH nor the working folder can
# put a source tree in its place.
$(VENV)/.package-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[package]'
	touch $@

wheel-check: $(VENV)/.package-installed
	rm -rf $(WHEEL_DIR)
	$(BIN)/python -m build --quiet --no-isolation --outdir $(WHEEL_DIR)/dist .
	$(BIN)/twine check --strict $(WHEEL_DIR)/dist/*
	$(PYTHON) -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install --quiet $(WHEEL_DIR)/dist/*.whl
	cd $(WHEEL_DIR) && venv/bin/python -I -c "import chainrule, importlib.metadata as m, \
	  sys; v = m.version('chainrule'); print('installed chainrule', chainrule.__version__, \
	  'at', chainrule.__file__); sys.exit(chainrule.__version__ != v \
	  or not chainrule.__file__.startswith(sys.prefix))"
	cd $(WHEEL_DIR) && venv/bin/python -I -m chainrule tutorial --no-picture > tutorial.txt \
	  2>&1 || { cat tutorial.txt; exit 1; }
	tail -n 3 $(WHEEL_DIR)/tutorial.txt

# The benchmark suite against the peers (see docs/performance.md); pass options
# with BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick --cases mazur"
$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench,examples]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(WHEEL_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis site
