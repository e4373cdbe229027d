"""The control store (the sandbox's global server) stopped: every command answers, in seconds,
with a clear error that does not send the operator to an unplanned failover (issue 14 item 12)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from mldr.sandbox.manager import Sandbox

pytestmark = pytest.mark.sandbox


@pytest.fixture
def control_store_stopped(sandbox: Sandbox) -> Iterator[None]:
    state = sandbox.running_state()
    pid = state.processes["moto-global"].pid
    os.kill(pid, signal.SIGSTOP)  # as in an outage: connections are accepted, nothing answers
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("command", [["history"], ["history", "--json"], ["status"]])
def test_a_silent_control_store_is_a_clear_error_in_seconds(
    control_store_stopped: None, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from mldr.cli import main

    started = time.monotonic()
    code = main(command)
    seconds = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "no replica of the control-state table answered" in out + err
    assert "Traceback" not in out + err
    assert "unplanned" not in out + err, "a failover needs the control store too: do not suggest one"
    # The probe timeouts (1 s connect, 2 s read, one attempt) bound it; botocore's defaults took 11 s.
    assert seconds < 9, f"{command} took {seconds:.1f}s"
