"""`make demo`: the weekly DR drill, run through Airflow against a local two-region sandbox.

1. the sandbox starts in `.sandbox-demo/` (a sandbox you run yourself is left alone); it trains
   the example model in the primary region and replication carries it to the secondary;
   meanwhile Airflow is imported and its metadata DB prepared in `.sandbox-demo/airflow`
   (SQLite, created once and reused);
2. the `dr_drill` DAG runs in process with `dag.test()` - the real DAG file, the real tasks, the
   Airflow metadata DB, XCom and asset events; no scheduler or API server to start;
3. the drill's progress is printed as it happens; Airflow's own logging goes to
   `.sandbox-demo/demo.log`;
4. the summary table (RTO, RPO, parity, verdict against the objectives) and the HTML report,
   copied out of the sandbox's ops bucket before the sandbox stops.

Environment: `MLDR_DEMO_DIR` (default `.sandbox-demo`), `MLDR_DEMO_SCENARIO` (default
`region-outage`), `MLDR_DEMO_HOLD` (seconds failed over, default 5).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "dr_drill"


class Console:
    """The terminal, kept aside before stdout/stderr are redirected to the log file."""

    def __init__(self) -> None:
        self.out: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        self.out.write(f"{message}\n")
        self.out.flush()

    def step(self, n: int, total: int, message: str) -> None:
        self.say(f"[{time.monotonic() - self.started:5.0f}s] {n}/{total} {message}")


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[None]:
    """Send everything written to fds 1 and 2 (Airflow, subprocess noise) to the log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


class ConsoleHandler(logging.Handler):
    """Shows the drill's progress lines (`[  12.3s] ...`) on the console while Airflow runs it."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("["):
            self.console.say(f"        {message}")


def airflow_environment(directory: Path) -> dict[str, str]:
    home = directory / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def prepare_airflow() -> float:
    """Import Airflow and create (or upgrade) its metadata DB; returns seconds spent."""
    started = time.monotonic()
    from airflow.utils.db import initdb

    initdb()
    return time.monotonic() - started


def load_dag() -> Any:
    """The DAG object from its file (dag.test() parses the whole folder again to sync it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(DAG_ID, REPO / "dags" / f"{DAG_ID}.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(REPO / "dags" / f"{DAG_ID}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def drill_xcom(run: Any) -> dict[str, Any] | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == "drill",
                XComModel.key == "return_value",
            )
            .one_or_none()
        )
    if row is None:
        return None
    value = json.loads(row.value) if isinstance(row.value, str) else row.value
    return value if isinstance(value, dict) else None


def copy_report(summary: dict[str, Any], directory: Path) -> Path | None:
    """The sandbox's S3 disappears with it: keep the HTML and JSON report locally."""
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.errors import MldrError
    from mldr.topology import load_topology

    topology = load_topology(use_airflow=False)
    cloud = AwsCloud.from_environment(topology)
    for region, uri in (summary.get("reports") or {}).items():
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        target = directory / "reports" / Path(key).name
        target.parent.mkdir(parents=True, exist_ok=True)
        store = cloud.objects(region)
        try:
            target.write_bytes(store.get(bucket, key).body)
            json_key = key.removesuffix(".html") + ".json"
            target.with_suffix(".json").write_bytes(store.get(bucket, json_key).body)
        except MldrError as exc:
            logging.getLogger(__name__).warning("report not copied from %s: %s", region, exc)
            continue
        return target
    return None


def run(directory: Path, console: Console) -> int:
    from mldr.sandbox.location import read_env_file
    from mldr.sandbox.manager import Sandbox

    total = 5
    scenario = os.environ.get("MLDR_DEMO_SCENARIO", "region-outage")
    hold = float(os.environ.get("MLDR_DEMO_HOLD", "5"))
    os.environ.update(airflow_environment(directory))
    os.environ["MLDR_SANDBOX_DIR"] = str(directory)
    sandbox = Sandbox(directory)
    console.step(1, total, f"starting the two-region sandbox in {directory.name}/ and preparing Airflow")
    outcome: dict[str, Any] = {}

    def start_sandbox() -> None:
        try:
            outcome["state"], _ = sandbox.up(progress=lambda m: console.say(f"        {m}"))
        except BaseException as exc:  # reported by the main thread, which owns the exit code
            outcome["error"] = exc

    # Airflow's import (~7 s) and DB set-up overlap with the sandbox's start-up. Airflow stays
    # in the main thread: it installs signal handlers, which only the main thread may do.
    starter = threading.Thread(target=start_sandbox, name="sandbox-up")
    starter.start()
    airflow_seconds = prepare_airflow()
    console.say(
        f"        Airflow ready (metadata DB {directory.name}/airflow/airflow.db) in {airflow_seconds:.0f}s"
    )
    starter.join()
    try:
        if "error" in outcome:
            raise outcome["error"]
        state = outcome["state"]
        os.environ.update(read_env_file(state.env_path))
        from mldr import http
        from mldr.topology import load_topology

        topology = load_topology(use_airflow=False)
        versions = {
            r: http.get(topology.region(r).endpoint_url + "/model", timeout=5).json().get("version")
            for r in topology.region_names
        }
        console.step(
            2,
            total,
            "model trained in the primary and replicated: "
            + ", ".join(f"{r} serves {v}" for r, v in versions.items()),
        )
        console.step(3, total, f"running the {DAG_ID} DAG in process (dag.test): {scenario}, hold {hold:g}s")
        dag = load_dag()
        handler = ConsoleHandler(console)
        progress = logging.getLogger("mldr.airflow.drill_tasks")
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
        started = time.monotonic()
        try:
            dag_run = dag.test(run_conf={"scenario": scenario, "hold_seconds": hold})
        finally:
            progress.removeHandler(handler)
        dag_seconds = time.monotonic() - started
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        console.step(
            4,
            total,
            f"DAG run {dag_run.state} in {dag_seconds:.0f}s: "
            + ", ".join(f"{t} {states.get(t)}" for t in ("preflight", "drill", "judge", "revert")),
        )
        summary = drill_xcom(dag_run)
        report = copy_report(summary, directory) if summary else None
    finally:
        console.step(5, total, "stopping the sandbox")
        sandbox.down()
    if summary is None:
        console.say(f"\nthe drill produced no result; see {directory.name}/demo.log")
        return 1
    from mldr.runbooks.drill.report import format_summary

    console.say("")
    console.say(format_summary({**summary, "report": str(report) if report else None, "reports": {}}))
    console.say(f"  airflow: dag_id {DAG_ID}, run {dag_run.run_id}, log {directory.name}/demo.log")
    return 0 if summary.get("verdict") == "pass" else 1


def main() -> int:
    from mldr.errors import MldrError

    directory = Path(os.environ.get("MLDR_DEMO_DIR", ".sandbox-demo")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    console = Console()
    console.say("mldr demo: a DR drill of an ML inference service across two (local) regions, run by Airflow")
    log_path = directory / "demo.log"
    with output_to(log_path):
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        try:
            code = run(directory, console)
        except MldrError as exc:
            logging.getLogger(__name__).exception("demo failed")
            console.say(f"\ndemo failed: {exc}\n  details: {log_path}")
            code = 1
    console.say(f"\ndemo finished in {time.monotonic() - console.started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
