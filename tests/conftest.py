"""Shared fixtures. The sandbox is started once per test session, in its own directory, so a
developer's own `.sandbox/` is never touched."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Airflow reads its configuration once, at first import: give the test session its own home
# (metadata DB, logs) before anything imports it, so a developer's Airflow is never touched.
REPO = Path(__file__).resolve().parents[1]
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="mldr-test-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ.pop("MLDR_TOPOLOGY", None)

from mldr.sandbox.location import read_env_file  # noqa: E402
from mldr.sandbox.manager import Sandbox, SandboxState  # noqa: E402 - after the Airflow env above

#: `make test-heavy` sets it: the tests marked `heavy` (minutes each) run only then.
HEAVY_ENV = "MLDR_HEAVY_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(HEAVY_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"heavy: minutes on its own; `make test-heavy` ({HEAVY_ENV}=1) runs it")
    for item in items:
        if item.get_closest_marker("heavy"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A running sandbox shared by the session; its connections are in os.environ."""
    directory = tmp_path_factory.mktemp("sandbox")
    previous = dict(os.environ)
    os.environ["MLDR_SANDBOX_DIR"] = str(directory)
    box = Sandbox(directory)
    try:
        state, _ = box.up()
        os.environ.update(read_env_file(state.env_path))
        yield box
    finally:
        box.down()
        os.environ.clear()
        os.environ.update(previous)


@pytest.fixture
def sandbox_state(sandbox: Sandbox) -> SandboxState:
    state = sandbox.state
    assert state is not None
    return state
