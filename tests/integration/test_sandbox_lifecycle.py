"""`up` holds every port it hands out; `down` stops everything it started, by pid, and leaves no
listener, even after a fault."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mldr.errors import SandboxError, SandboxInputError, UnknownRegion
from mldr.sandbox.manager import Sandbox, port_in_use, process_alive

pytestmark = pytest.mark.sandbox


def _serving_port(command: list[str], kwargs: dict[str, Any]) -> int:
    """The port a sandbox child will serve on: its inherited socket's, or its `--port`."""
    if "--fd" in command:
        fd = int(command[command.index("--fd") + 1])
        with socket.socket(fileno=os.dup(fd)) as inherited:
            return int(inherited.getsockname()[1])
    return int(command[command.index("--port") + 1])


def test_no_port_can_be_taken_during_start_and_down_after_an_outage_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outgoing connections draw local ports from the range free ports come from: a port picked
    for a child must be held until the child serves on it, or a start fails "address in use".
    A thief tries to bind each child's port just before the child starts."""
    real_popen = subprocess.Popen
    stolen: list[int] = []
    thieves: list[socket.socket] = []

    def popen_after_a_thief(command: list[str], *args: Any, **kwargs: Any) -> Any:
        port = _serving_port(command, kwargs)
        thief = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            thief.bind(("127.0.0.1", port))
            thief.listen(1)
            stolen.append(port)
            thieves.append(thief)
        except OSError:
            thief.close()
        return real_popen(command, *args, **kwargs)

    monkeypatch.setenv("MLDR_SANDBOX_DIR", str(tmp_path))
    monkeypatch.setattr(subprocess, "Popen", popen_after_a_thief)
    box = Sandbox(tmp_path)
    try:
        state, started = box.up()
    finally:
        monkeypatch.setattr(subprocess, "Popen", real_popen)
        for thief in thieves:
            thief.close()
    assert not stolen, f"ports taken between being picked and being served on: {stolen}"
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
    impossible: list[tuple[dict[str, Any], str]] = [
        ({"edge_port": 70000}, "edge port must be >= 1 and <= 65535, got 70000"),
        ({"edge_port": 0}, "edge port must be >= 1 and <= 65535, got 0"),
        ({"failure_threshold": 0}, "failure threshold must be >= 1 and <= 10, got 0"),
        ({"lag_seconds": float("nan")}, "replication lag .* must be a finite number"),
        ({"probe_interval": 0.0}, "probe interval .* must be > 0, got 0.0"),
    ]
    for settings, message in impossible:
        with pytest.raises(SandboxInputError, match=message) as info:
            box.up(**settings)
        assert info.value.exit_code == 2, "bad input exits 2: nothing was changed"
        assert not (tmp_path / "state.json").exists(), f"{settings} started something"
    with pytest.raises(SandboxError, match="not running"):
        box.region_outage("us-east-1")
    assert box.state is None
