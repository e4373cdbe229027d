"""`down` stops everything it started, by pid, and leaves no listener, even after a fault."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mldr.errors import SandboxError, UnknownRegion
from mldr.sandbox.manager import Sandbox, port_in_use, process_alive

pytestmark = pytest.mark.sandbox


def test_down_after_an_outage_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLDR_SANDBOX_DIR", str(tmp_path))
    box = Sandbox(tmp_path)
    state, started = box.up()
    assert started
    records = list(state.processes.values())
    try:
        with pytest.raises(UnknownRegion, match="eu-west-1"):
            box.region_outage("eu-west-1")
        box.region_outage(state.primary)
    finally:
        stopped = box.down()
    assert set(stopped) == {r.name for r in records}
    for record in records:
        assert not process_alive(record), f"{record.name} (pid {record.pid}) still running"
        assert not port_in_use(record.port), f"{record.name} left a listener on port {record.port}"
        with pytest.raises(ProcessLookupError):
            os.kill(record.pid, 0)
    assert box.status()["running"] is False
    assert box.down() == []


def test_bad_input_is_refused_before_anything_starts(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    with pytest.raises(SandboxError, match="must differ"):
        box.up(primary="us-east-1", secondary="us-east-1")
    with pytest.raises(SandboxError, match="not running"):
        box.region_outage("us-east-1")
    assert box.state is None
