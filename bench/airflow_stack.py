"""`make up` for a benchmark: the sandbox plus `airflow standalone` in a directory of its own,
and just enough of Airflow's public REST API to trigger a DAG run and wait for it.

    with AirflowStack(directory) as stack:
        run = stack.run_dag("dr_failover", {...})   # trigger, wait, return the finished run

Timings are what an operator sees: from the trigger request to the run's end, plus the run's
own start/end as Airflow recorded them (the difference is the scheduler's pickup delay).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
LOGIN = {"username": "admin", "password": "admin"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class FinishedRun:
    dag_id: str
    run_id: str
    state: str
    wall_seconds: float  # trigger request -> the API reports a finished run
    run_seconds: float  # the run's own start_date -> end_date

    @property
    def queued_seconds(self) -> float:
        return self.wall_seconds - self.run_seconds


class AirflowStack:
    def __init__(self, directory: Path, *, timeout: float = 600.0) -> None:
        self.directory = directory
        self.port = _free_port()
        self.timeout = timeout
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLDR_", "PYTEST"))
        } | {
            "MLDR_SANDBOX_DIR": str(directory / "sandbox"),
            "MLDR_AIRFLOW_PORT": str(self.port),
            "MLDR_UP_TIMEOUT": str(int(timeout)),
            "MLDR_UP_SEED_LAG": "0",
        }
        self.base = f"http://localhost:{self.port}"
        self.http = httpx.Client(timeout=30.0)
        self.token = ""

    def __enter__(self) -> AirflowStack:
        started = time.monotonic()
        up = subprocess.run(
            ["bash", str(REPO / "scripts" / "up.sh")], env=self.env, capture_output=True, text=True
        )
        if up.returncode != 0:
            self._down()
            raise SystemExit(f"make up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
        print(f"  make up: {time.monotonic() - started:.0f}s (sandbox + airflow standalone)", flush=True)
        response = self.http.post(f"{self.base}/auth/token", json=LOGIN)
        response.raise_for_status()
        self.token = response.json()["access_token"]
        return self

    def __exit__(self, *exc: object) -> None:
        self._down()

    def _down(self) -> None:
        subprocess.run(["bash", str(REPO / "scripts" / "down.sh")], env=self.env, capture_output=True)

    @property
    def sandbox_env(self) -> dict[str, str]:
        """The sandbox's AIRFLOW_CONN_* and MLDR_TOPOLOGY, as `mldr` commands need them."""
        from mldr.sandbox.location import ENV_FILE, read_env_file  # bench/ puts plugins/ on sys.path

        return read_env_file(self.directory / "sandbox" / ENV_FILE)

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(
            method, f"{self.base}/api/v2{path}", headers={"Authorization": f"Bearer {self.token}"}, **kwargs
        )
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def wait_for_dag(self, dag_id: str) -> None:
        """The dag-processor parses the files after start-up; unpause once the DAG is known."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            response = self.http.get(
                f"{self.base}/api/v2/dags/{dag_id}", headers={"Authorization": f"Bearer {self.token}"}
            )
            if response.status_code == 200:
                self._api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
                return
            time.sleep(1.0)
        raise SystemExit(f"{dag_id} was not parsed within {self.timeout:.0f}s")

    def run_dag(self, dag_id: str, conf: dict[str, Any]) -> FinishedRun:
        self.wait_for_dag(dag_id)
        started = time.monotonic()
        run = self._api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        run_id = run["dag_run_id"]
        deadline = started + self.timeout
        while time.monotonic() < deadline:
            run = self._api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                wall = time.monotonic() - started
                own = (
                    datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
                ).total_seconds()
                return FinishedRun(dag_id, run_id, run["state"], wall, own)
            time.sleep(0.25)
        raise SystemExit(f"{dag_id} run {run_id} did not finish within {self.timeout:.0f}s")
