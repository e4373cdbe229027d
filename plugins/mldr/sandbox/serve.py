"""Run the sandbox in the foreground: up, stay up until SIGTERM or SIGINT, then down.

`mldr sandbox up` starts the sandbox's processes in the background and returns, which is what a
laptop wants; a container wants a main process that lives as long as the sandbox and stops it on
`docker compose stop`. The `sandbox` service of docker-compose.yaml runs

    python -m mldr.sandbox.serve            # start, then wait; exits 1 if a sandbox process dies
    python -m mldr.sandbox.serve --check    # the healthcheck: 0 when every process runs

State lives in `MLDR_SANDBOX_DIR` (a volume the Airflow services mount to read `airflow.env`).
While up it serves the control endpoint (`mldr.sandbox.control`), so region outages asked for from
the Airflow containers (other PID namespaces) are applied here, by the processes' owner.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from mldr.errors import MldrError
from mldr.sandbox.control import ControlServer
from mldr.sandbox.manager import Sandbox

log = logging.getLogger("mldr.sandbox.serve")

WATCH_SECONDS = 5.0


def serve(
    sandbox: Sandbox,
    stop: threading.Event,
    *,
    lag_seconds: float = 1.0,
    edge_port: int | None = None,
    watch_seconds: float = WATCH_SECONDS,
) -> int:
    """Start `sandbox`, wait until `stop` is set or a process dies, then stop it. Exit status."""
    control: ControlServer | None = None
    try:
        state, _ = sandbox.up(
            lag_seconds=lag_seconds, edge_port=edge_port, progress=lambda m: log.info("%s", m)
        )
        control = ControlServer(
            sandbox.directory,
            {
                "region-outage": lambda region: sandbox.signal_region(region, signal.SIGSTOP),
                "heal": lambda region: sandbox.signal_region(region, signal.SIGCONT),
            },
            status=lambda: {"running": sandbox.is_running(), "outage": sandbox.outages()},
        )
        control.start()
        log.info(
            "sandbox up: edge %s, regions %s and %s; connections in %s",
            state.edge_url,
            state.primary,
            state.secondary,
            state.env_path,
        )
        while not stop.wait(watch_seconds):
            if not sandbox.is_running():
                log.error("a sandbox process died (see the logs in %s); stopping the rest", sandbox.directory)
                return 1
        log.info("stop requested")
        return 0
    finally:
        if control is not None:
            control.stop()
        stopped = sandbox.down()
        log.info("sandbox down: stopped %d process(es)", len(stopped))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mldr.sandbox.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 0 if the sandbox runs, 1 if not")
    parser.add_argument("--lag", type=float, default=1.0, help="replication lag in seconds (default 1)")
    parser.add_argument("--edge-port", type=int, default=None, help="fixed port for the edge")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sandbox = Sandbox()
    if args.check:
        return 0 if sandbox.is_running() else 1
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        return serve(sandbox, stop, lag_seconds=args.lag, edge_port=args.edge_port)
    except MldrError as exc:
        log.error("%s", exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
