"""`python -m mldr.sandbox.serve`, the docker-compose sandbox service: up, wait, down on a signal."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mldr.errors import SandboxInputError, UnknownRegion
from mldr.sandbox import serve
from mldr.sandbox.control import CONTROL_FILE, TOKEN_HEADER, ControlClient
from mldr.sandbox.manager import Sandbox, SandboxState


class FakeSandbox:
    def __init__(self, directory: Path, *, dies_after: int | None = None) -> None:
        self.directory = directory
        self.calls: list[str] = []
        self.checks = 0
        self.dies_after = dies_after

    def up(self, **kwargs: Any) -> tuple[SandboxState, bool]:
        self.calls.append(f"up lag={kwargs['lag_seconds']}")
        return SandboxState(primary="us-east-1", secondary="us-west-2", started_at=0.0, ready=True), True

    def is_running(self) -> bool:
        self.checks += 1
        return self.dies_after is None or self.checks <= self.dies_after

    def down(self) -> list[str]:
        self.calls.append("down")
        return ["moto-global"]

    def outages(self) -> dict[str, bool]:
        return {"us-east-1": "SIGSTOP us-east-1" in self.calls[-1:], "us-west-2": False}

    def signal_region(self, region: str, sig: signal.Signals) -> None:
        if region not in ("us-east-1", "us-west-2"):
            raise UnknownRegion(region, ["us-east-1", "us-west-2"])
        self.calls.append(f"{sig.name} {region}")


def test_stops_the_sandbox_when_asked(tmp_path: Path) -> None:
    sandbox, stop = FakeSandbox(tmp_path), threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    assert serve.serve(sandbox, stop, lag_seconds=2.0, watch_seconds=0.05) == 0  # type: ignore[arg-type]
    assert sandbox.calls == ["up lag=2.0", "down"]


def test_exits_non_zero_and_cleans_up_when_a_sandbox_process_dies(tmp_path: Path) -> None:
    sandbox = FakeSandbox(tmp_path, dies_after=2)
    assert serve.serve(sandbox, threading.Event(), watch_seconds=0.01) == 1  # type: ignore[arg-type]
    assert sandbox.calls[-1] == "down", "the processes still running are stopped"


def test_check_reports_whether_the_sandbox_runs(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("MLDR_SANDBOX_DIR", str(tmp_path))
    assert serve.main(["--check"]) == 1, "nothing runs in an empty directory"


def test_faults_from_another_container_reach_the_sandbox_through_its_control_endpoint(tmp_path: Path) -> None:
    """docker-compose: the Airflow containers share the sandbox's network and its directory, not its
    PID namespace. `Sandbox.region_outage` there must ask the serving process, which signals."""
    sandbox, stop = FakeSandbox(tmp_path), threading.Event()
    runner = threading.Thread(target=serve.serve, args=(sandbox, stop), kwargs={"watch_seconds": 0.05})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / CONTROL_FILE).exists():
            assert time.monotonic() < deadline, "the control endpoint never came up"
            time.sleep(0.01)
        elsewhere = Sandbox(tmp_path)  # what an Airflow task builds: no process of the sandbox is its own
        elsewhere.region_outage("us-east-1")
        owner = ControlClient.find(tmp_path)
        assert owner is not None and owner.status() == {
            "running": True,
            "outage": {"us-east-1": True, "us-west-2": False},
        }, "status in the other container shows what the sandbox's own process sees"
        elsewhere.heal("us-east-1")
        assert sandbox.calls[1:] == ["SIGSTOP us-east-1", "SIGCONT us-east-1"]
        with pytest.raises(SandboxInputError, match="unknown region 'eu-west-9'") as bad:
            elsewhere.region_outage("eu-west-9")
        assert bad.value.exit_code == 2
        # without the token from the sandbox's directory, nothing happens
        url = json.loads((tmp_path / CONTROL_FILE).read_text())["url"]
        forged = httpx.post(
            f"{url}/faults/region-outage", json={"region": "us-west-2"}, headers={TOKEN_HEADER: "x"}
        )
        assert forged.status_code == 403
        assert sandbox.calls[1:] == ["SIGSTOP us-east-1", "SIGCONT us-east-1"]
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not (tmp_path / CONTROL_FILE).exists(), "a stopped sandbox leaves no endpoint to call"
    assert sandbox.calls[-1] == "down"
