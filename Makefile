# mldr: two commands on a fresh machine — `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PYTHON ?= python3
export UV_LINK_MODE := copy

.PHONY: install lint format test test-fast demo up down bench clean

# uv itself comes from PyPI; the lock file pins everything else.
$(UV):
	$(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv

install: $(UV)
	$(UV) sync --locked

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

# Lint and the whole suite: unit, DAG integrity, infra (Pulumi mocks), sandbox integration, drills.
test: install lint
	$(UV) run pytest -q

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
