# Each target installs what it needs into a local virtual environment ($(VENV),
# made with $(PYTHON)) the first time, and again when pyproject.toml changes:
#   make demo    installs chainrule with the viz extra and runs the worked example,
#                python -m chainrule tutorial (its pictures go to tutorial-out/)
#   make lint    installs the test, viz and examples extras, then runs ruff check,
#                ruff format --check (on src tests examples bench) and mypy
#   make test    make lint, make docs, then the whole pytest suite (tests, the
#                doctests of src and docs, and the notebooks, each run in a fresh kernel)
#   make docs    installs the docs extra and builds the documentation site with
#                mkdocs build --strict (a broken link or reference fails) into site/
#   make bench   installs the bench extra (PyTorch, HIPS autograd, micrograd) and
#                runs python -m bench $(BENCH_ARGS); see docs/performance.md
#   make clean   removes $(VENV), site/ and the caches of pytest, mypy, ruff and hypothesis
# The checks of make lint also run before each commit once `pre-commit install`
# has been run (see .pre-commit-config.yaml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[viz]'
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

test: lint docs
	$(BIN)/python -m pytest

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The benchmark suite against the peers (see docs/performance.md); pass options
# with BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick --cases mazur"
$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench,examples]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site
