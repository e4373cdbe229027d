# mldr: two commands on a fresh machine — `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PYTHON ?= python3
export UV_LINK_MODE := copy
# Let Python keep the bytecode of what it imports. Machines like ours set PYTHONDONTWRITEBYTECODE=1,
# so every Python process compiled boto3, moto, Airflow and scikit-learn from source again: the
# sandbox took 24 s to start instead of 13 s, `mldr status` 2.5 s instead of 0.9 s. Written on first
# import, bytecode costs only the modules we use (compiling all 17,000 installed files at install,
# UV_COMPILE_BYTECODE, took 53 s of every clean `make test`).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: install lint format test test-heavy test-fast demo up down bench clean

# uv itself comes from PyPI; the lock file pins everything else.
$(UV):
	$(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv

install: $(UV)
	$(UV) sync --locked --all-extras

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

# Lint and the whole suite: unit, DAG integrity, infra (Pulumi mocks), sandbox integration, drills.
# Three workers, each with its own sandbox and Airflow home; a file's tests stay on one worker, in
# order. The suite waits more than it computes (replication lags, detection windows, timeouts):
# with two workers a 2-core machine sat ~30% idle and the suite took 11 min; with three, 8.7 min.
test: install lint
	$(UV) run pytest -q -n 3 --dist loadfile

test-heavy: install
	MLDR_HEAVY_TESTS=1 $(UV) run pytest -q -n 2 --dist loadfile -m heavy

test-fast: install
	$(UV) run pytest -q -m "not sandbox"

demo: install
	$(UV) run python -m mldr.demo

up: install
	bash scripts/up.sh

down:
	bash scripts/down.sh

clean: down
	rm -rf .sandbox .pytest_cache .mypy_cache .ruff_cache
