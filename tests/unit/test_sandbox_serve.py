"""`python -m mldr.sandbox.serve`, the docker-compose sandbox service: up, wait, down on a signal."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mldr.sandbox import serve
from mldr.sandbox.manager import SandboxState


class FakeSandbox:
    def __init__(self, *, dies_after: int | None = None) -> None:
        self.directory = Path("/nonexistent")
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


def test_stops_the_sandbox_when_asked() -> None:
    sandbox, stop = FakeSandbox(), threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    assert serve.serve(sandbox, stop, lag_seconds=2.0, watch_seconds=0.05) == 0  # type: ignore[arg-type]
    assert sandbox.calls == ["up lag=2.0", "down"]


def test_exits_non_zero_and_cleans_up_when_a_sandbox_process_dies() -> None:
    sandbox = FakeSandbox(dies_after=2)
    assert serve.serve(sandbox, threading.Event(), watch_seconds=0.01) == 1  # type: ignore[arg-type]
    assert sandbox.calls[-1] == "down", "the processes still running are stopped"


def test_check_reports_whether_the_sandbox_runs(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("MLDR_SANDBOX_DIR", str(tmp_path))
    assert serve.main(["--check"]) == 1, "nothing runs in an empty directory"
