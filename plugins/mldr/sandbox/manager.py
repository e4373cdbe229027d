"""Start, inspect, break and stop the local two-region sandbox (`mldr sandbox ...`).

Processes, all on 127.0.0.1 with free ports recorded in `.sandbox/state.json`:
moto for the global services and for each region, the replicator, an inference server per
region and the edge. `down` stops every process it started, by pid, also after a fault left
some stopped (SIGSTOP), and checks that no listener is left.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from mldr import http
from mldr.errors import SandboxError, SandboxInputError, UnknownRegion
from mldr.extras import install_hint, missing_modules
from mldr.inputs import finite_number, whole_number
from mldr.sandbox import iam
from mldr.sandbox import provision as prov
from mldr.sandbox.control import ControlClient
from mldr.sandbox.listen import listen_socket, port_of
from mldr.sandbox.location import ENV_FILE, sandbox_dir, write_env_file
from mldr.sandbox.settings import FAILURE_THRESHOLD_RANGE, PORT_RANGE

log = logging.getLogger("mldr.sandbox")

DEFAULT_PRIMARY = "us-east-1"
DEFAULT_SECONDARY = "us-west-2"
START_TIMEOUT = 30.0


@dataclass
class ProcessRecord:
    name: str
    pid: int
    port: int
    module: str
    log: str
    region: str | None = None


@dataclass
class SandboxState:
    primary: str
    secondary: str
    started_at: float
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    moto: dict[str, str] = field(default_factory=dict)
    edge_url: str = ""
    replicator_url: str = ""
    topology_path: str = ""
    env_path: str = ""
    ready: bool = False
    #: IAM users every moto server knows: name -> access_key_id, secret_access_key
    principals: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def regions(self) -> list[str]:
        return [self.primary, self.secondary]

    def save(self, directory: Path) -> None:
        (directory / "state.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> SandboxState | None:
        path = directory / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["processes"] = {k: ProcessRecord(**v) for k, v in data["processes"].items()}
        return cls(**data)


# --- settings a person gives ---------------------------------------------------------------


def _check_settings(
    lag_seconds: float,
    probe_interval: float,
    failure_threshold: int,
    edge_port: int | None,
    standby_capacity: int = 1,
    scale_up_seconds: float = 0.0,
) -> None:
    """Refuse impossible settings before anything starts (a traceback from a child otherwise)."""
    whole_number(
        "standby capacity (tasks)",
        standby_capacity,
        minimum=0,
        maximum=prov.SandboxLayout.active_capacity,
        error=SandboxInputError,
    )
    finite_number("scale-up time (seconds)", scale_up_seconds, minimum=0, error=SandboxInputError)
    finite_number("replication lag (seconds)", lag_seconds, minimum=0, error=SandboxInputError)
    finite_number(
        "health-check probe interval (seconds)",
        probe_interval,
        minimum=0,
        exclusive_minimum=True,
        error=SandboxInputError,
    )
    low, high = FAILURE_THRESHOLD_RANGE
    whole_number("failure threshold", failure_threshold, minimum=low, maximum=high, error=SandboxInputError)
    if edge_port is not None:
        low, high = PORT_RANGE
        whole_number("edge port", edge_port, minimum=low, maximum=high, error=SandboxInputError)


def _lag_seconds(value: str | float | None) -> float:
    if value is None:
        raise SandboxInputError("replication lag needs a number of seconds >= 0, e.g. `lag 5`")
    try:
        seconds = float(value)
    except ValueError:
        raise SandboxInputError(f"replication lag must be a number of seconds >= 0, not {value!r}") from None
    return finite_number("replication lag (seconds)", seconds, minimum=0, error=SandboxInputError)


# --- process helpers ---------------------------------------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _proc_state(pid: int) -> str | None:
    """The kernel's one-letter state (R, S, T for stopped, Z...), None if the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _is_ours(record: ProcessRecord) -> bool:
    """The pid still runs our module (pids are reused; never signal a stranger)."""
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return record.module in cmdline


def process_alive(record: ProcessRecord) -> bool:
    state = _proc_state(record.pid)
    return state is not None and state != "Z" and _is_ours(record)


def process_stopped(record: ProcessRecord) -> bool:
    return _proc_state(record.pid) in ("T", "t") and _is_ours(record)


def _plugins_path() -> str:
    return str(Path(__file__).resolve().parents[2])


def _spawn(
    directory: Path, name: str, module: str, args: list[str], sock: socket.socket, region: str | None
) -> ProcessRecord:
    """Start `module` serving on `sock` (bound here, handed over as `--fd`); our copy is closed."""
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_plugins_path(), env.get("PYTHONPATH", "")) if p)
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env["PYTHONUNBUFFERED"] = "1"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--fd", str(sock.fileno()), *args],
            pass_fds=(sock.fileno(),),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # our signals reach this process alone, not the caller's group
        )
    port = port_of(sock)
    sock.close()
    return ProcessRecord(name=name, pid=proc.pid, port=port, module=module, log=str(log_path), region=region)


def _wait_until(what: str, check: Callable[[], bool], record: ProcessRecord | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record is not None and not process_alive(record):
            tail = Path(record.log).read_text(errors="replace")[-1500:] if Path(record.log).exists() else ""
            hint = " (port in use?)" if "in use" in tail else ""
            raise SandboxError(
                f"{record.name} exited during start-up{hint}; its log {record.log} ends:\n{tail}"
            )
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}")


def _get_ok(url: str, timeout: float = 1.0) -> bool:
    return http.get(url, timeout=timeout).status_code == 200


def _stop_process(record: ProcessRecord, grace: float = 5.0) -> None:
    if not process_alive(record):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and process_alive(record):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(record.pid, os.WNOHANG)
        time.sleep(0.05)
    if process_alive(record):
        log.warning("%s (pid %d) ignored SIGTERM; killing it", record.name, record.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(record.pid, 0)


# --- the sandbox ---------------------------------------------------------------------------


class Sandbox:
    """The sandbox living in one directory (default `./.sandbox`)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or sandbox_dir()

    @property
    def state(self) -> SandboxState | None:
        return SandboxState.load(self.directory)

    def running_state(self) -> SandboxState:
        state = self.state
        if state is None or not state.ready:
            raise SandboxError("the sandbox is not running: start it with `mldr sandbox up`")
        return state

    def is_running(self) -> bool:
        state = self.state
        return bool(state and state.ready and all(process_alive(p) for p in state.processes.values()))

    # -- up --

    def up(
        self,
        *,
        primary: str = DEFAULT_PRIMARY,
        secondary: str = DEFAULT_SECONDARY,
        lag_seconds: float = 1.0,
        probe_interval: float = 1.0,
        failure_threshold: int = 3,
        edge_port: int | None = None,
        standby_capacity: int = 1,
        scale_up_seconds: float = 10.0,
        progress: Callable[[str], None] = lambda _m: None,
    ) -> tuple[SandboxState, bool]:
        """Start the sandbox. Returns (state, started); started is False if it was running.

        `standby_capacity` 0 makes the standby a pilot light: its inference answers 503 until a
        failover scales it up, and then only `scale_up_seconds` later (new tasks starting).
        """
        if self.is_running():
            state = self.state
            assert state is not None
            return state, False
        if self.state is not None:
            progress("a previous sandbox did not shut down cleanly; stopping what is left of it")
            self.down()
        missing = missing_modules("sandbox")
        if missing:
            raise SandboxError(f"missing dependencies: {', '.join(missing)}; {install_hint('sandbox')}")
        if primary == secondary:
            raise SandboxInputError(f"the two sandbox regions must differ (both are {primary})")
        _check_settings(
            lag_seconds, probe_interval, failure_threshold, edge_port, standby_capacity, scale_up_seconds
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        state = SandboxState(primary=primary, secondary=secondary, started_at=time.time())
        try:
            capacity = (standby_capacity, scale_up_seconds)
            self._start(state, lag_seconds, probe_interval, failure_threshold, edge_port, capacity, progress)
        except BaseException:
            state.save(self.directory)
            self.down()
            raise
        state.ready = True
        state.save(self.directory)
        progress(f"sandbox ready in {time.monotonic() - started:.1f}s")
        return state, True

    def _start(
        self,
        state: SandboxState,
        lag_seconds: float,
        probe_interval: float,
        failure_threshold: int,
        edge_port: int | None,
        capacity: tuple[int, float],
        progress: Callable[[str], None],
    ) -> None:
        d = self.directory
        standby_capacity, scale_up_seconds = capacity
        procs = state.processes

        def add(record: ProcessRecord) -> ProcessRecord:
            procs[record.name] = record
            state.save(d)
            return record

        # Everything that does not need provisioned resources starts at once: on two cores the
        # processes' imports (moto, scikit-learn) overlap with each other and with provisioning.
        trainer = threading.Thread(target=importlib.import_module, args=("mldr.ml.train",), daemon=True)
        trainer.start()
        # Every socket is bound before any child starts: children learn each other's ports from
        # the command line, and a bound port cannot be taken by anyone in the meantime.
        replicator_socket = listen_socket()
        state.replicator_url = f"http://127.0.0.1:{port_of(replicator_socket)}"
        moto_sockets = {name: listen_socket() for name in ("global", *state.regions)}
        ports = {name: port_of(sock) for name, sock in moto_sockets.items()}
        inference_sockets = {r: listen_socket() for r in state.regions}
        inference_ports = {r: port_of(sock) for r, sock in inference_sockets.items()}
        edge_socket = listen_socket(edge_port or 0)
        edge_port = port_of(edge_socket)
        datasets = tuple(name for name, _, _ in prov.DATASETS)
        principals = iam.new_principals(datasets)
        state.principals = {name: asdict(p) for name, p in principals.items()}
        principals_path = d / "principals.json"
        principals_path.write_text(json.dumps(state.principals))
        principals_path.chmod(0o600)
        for name in ("global", *state.regions):
            port = ports[name]
            observe = [] if name == "global" else ["--replicator-url", state.replicator_url]
            # each region's server reads the others' objects, for cross-region CopyObject
            peers = [r for r in state.regions if r != name] if name != "global" else []
            observe += [arg for r in peers for arg in ("--peer", f"http://127.0.0.1:{ports[r]}")]
            observe += ["--principals", str(principals_path)]
            add(
                _spawn(
                    d,
                    f"moto-{name}",
                    "mldr.sandbox.motoserver",
                    ["--name", name, *observe],
                    moto_sockets[name],
                    None if name == "global" else name,
                )
            )
            state.moto[name] = f"http://127.0.0.1:{port}"
        config_path = d / "replicator.json"
        config_path.write_text(
            json.dumps(
                {
                    "regions": {r: state.moto[r] for r in state.regions},
                    "lag_seconds": lag_seconds,
                    # S3 replicates with the rule's role: the principal playing each one
                    "roles": {
                        prov.replication_role_arn(dataset): {
                            "access_key_id": principals[iam.replication_principal(dataset)].access_key_id,
                            "secret_access_key": principals[
                                iam.replication_principal(dataset)
                            ].secret_access_key,
                        }
                        for dataset in datasets
                    },
                    # the control-state table's two replicas on the global server (a global table)
                    "control": {
                        "endpoint": state.moto["global"],
                        "table": prov.CONTROL_TABLE,
                        "regions": state.regions,
                    },
                }
            )
        )
        add(
            _spawn(
                d,
                "replicator",
                "mldr.sandbox.replicator",
                ["--config", str(config_path)],
                replicator_socket,
                None,
            )
        )
        for region in state.regions:
            add(
                _spawn(
                    d,
                    f"inference-{region}",
                    "mldr.sandbox.inference",
                    [
                        "--region",
                        region,
                        "--s3-endpoint",
                        state.moto[region],
                        "--bucket",
                        prov.bucket_name("model-artifacts", region),
                        "--reload-seconds",
                        "1.0",
                        # it answers like the region's ECS service's tasks: none at desired count 0
                        "--ecs-endpoint",
                        state.moto[region],
                        "--cluster",
                        prov.CLUSTER,
                        "--service",
                        prov.SERVICE,
                    ],
                    inference_sockets[region],
                    region,
                )
            )
        state.edge_url = f"http://127.0.0.1:{edge_port}"
        layout = prov.SandboxLayout(
            primary=state.primary,
            secondary=state.secondary,
            moto=dict(state.moto),
            inference_ports=inference_ports,
            edge_url=state.edge_url,
            replicator_url=state.replicator_url,
            probe_interval_seconds=probe_interval,
            failure_threshold=failure_threshold,
            standby_capacity=standby_capacity,
            scale_up_seconds=scale_up_seconds,
        )
        progress(
            "starting moto servers (global, " + ", ".join(state.regions) + "), replicator, inference servers"
        )
        for name in ("global", *state.regions):
            record = procs[f"moto-{name}"]
            _wait_until(
                f"moto-{name}",
                partial(_get_ok, f"http://127.0.0.1:{record.port}/_mldr/ping"),
                record,
                START_TIMEOUT,
            )
        progress("provisioning buckets, replication rules, Route 53 failover records, control state")
        topology = prov.provision(layout)
        prov.grant_principals(layout, topology, principals)
        add(
            _spawn(
                d,
                "edge",
                "mldr.sandbox.edge",
                [
                    "--route53-endpoint",
                    state.moto["global"],
                    "--zone-id",
                    topology.inference.hosted_zone_id,
                    "--record-name",
                    topology.inference.record_name,
                ],
                edge_socket,
                None,
            )
        )
        topology_path = d / "topology.json"
        topology_path.write_text(topology.to_json())
        state.topology_path = str(topology_path)
        env_path = d / ENV_FILE
        write_env_file(env_path, prov.airflow_env(layout, str(topology_path), principals[iam.OPERATOR]))
        state.env_path = str(env_path)
        state.save(d)

        rep = procs["replicator"]
        _wait_until("the replicator", lambda: _get_ok(f"{state.replicator_url}/health"), rep, START_TIMEOUT)
        progress("training the example model in the primary region; replication carries it across")
        trainer.join()
        from mldr.ml.train import train_and_publish

        s3 = prov.client("s3", state.moto[state.primary], state.primary)
        train_and_publish(
            s3_training=s3,
            s3_features=s3,
            s3_artifacts=s3,
            training_bucket=prov.bucket_name("training-data", state.primary),
            features_bucket=prov.bucket_name("features", state.primary),
            artifacts_bucket=prov.bucket_name("model-artifacts", state.primary),
            region=state.primary,
        )
        # A pilot-light standby has no task: it stays unhealthy until a failover scales it up.
        serving = [r for r in state.regions if r == state.primary or standby_capacity > 0]
        progress(f"waiting for the inference server(s) of {', '.join(serving)} and the edge to answer")
        for region in serving:
            record = procs[f"inference-{region}"]
            _wait_until(
                f"inference-{region} healthy",
                partial(_get_ok, f"http://127.0.0.1:{record.port}/healthz"),
                record,
                START_TIMEOUT,
            )
        edge = procs["edge"]

        def edge_answers_primary() -> bool:
            resolved = http.get(f"{state.edge_url}/resolve", timeout=1.0).json()
            return bool(resolved.get("answer") == state.primary)

        _wait_until("the edge to answer the primary", edge_answers_primary, edge, START_TIMEOUT)

    # -- down --

    def down(self) -> list[str]:
        """Stop every process the sandbox started; returns their names."""
        state = self.state
        if state is None:
            return []
        stopped = []
        for record in reversed(list(state.processes.values())):
            if process_alive(record):
                _stop_process(record)
                stopped.append(record.name)
        leftovers = [r for r in state.processes.values() if process_alive(r)]
        if leftovers:
            raise SandboxError("could not stop: " + ", ".join(f"{r.name} (pid {r.pid})" for r in leftovers))
        (self.directory / "state.json").unlink(missing_ok=True)
        return stopped

    # -- status --

    def status(self) -> dict[str, Any]:
        state = self.state
        if state is None:
            return {"running": False, "edge_url": None, "dns_answer": None, "regions": {}}
        procs = state.processes
        dns_answer = None
        checks: dict[str, Any] = {}
        with contextlib.suppress(httpx.HTTPError, ValueError):
            resolved = http.get(f"{state.edge_url}/resolve", timeout=1.0).json()
            dns_answer = resolved.get("answer")
            checks = resolved.get("checks", {})
        # Served by `mldr.sandbox.serve` (docker-compose): only its process sees the processes.
        control = ControlClient.find(self.directory)
        owner = control.status() if control else None
        outages = owner["outage"] if owner else self.outages()
        regions: dict[str, Any] = {}
        for region in state.regions:
            inference = procs.get(f"inference-{region}")
            outage = bool(outages.get(region))
            healthy = False
            if inference and not outage:
                with contextlib.suppress(httpx.HTTPError):
                    healthy = _get_ok(f"http://127.0.0.1:{inference.port}/healthz", timeout=1.0)
            regions[region] = {
                "s3_endpoint": state.moto.get(region),
                "inference_url": f"http://127.0.0.1:{inference.port}" if inference else None,
                "healthy": healthy,
                "outage": outage,
                "edge_check": checks.get(region, {}).get("status"),
            }
        replication: dict[str, Any] = {}
        with contextlib.suppress(httpx.HTTPError, ValueError):
            replication = http.get(f"{state.replicator_url}/stats", timeout=1.0).json()
        return {
            "running": owner["running"] if owner else self.is_running(),
            "edge_url": state.edge_url,
            "dns_answer": dns_answer,
            "primary": state.primary,
            "secondary": state.secondary,
            "regions": regions,
            "replication": {"settings": replication.get("settings"), "counts": replication.get("counts")},
            "topology": state.topology_path,
            "airflow_env": state.env_path,
            "principals": {
                name: iam.Principal(**keys).as_status() for name, keys in state.principals.items()
            },
            "processes": {
                n: {"pid": p.pid, "port": p.port, "alive": process_alive(p)} for n, p in procs.items()
            },
        }

    # -- faults --

    def _region_processes(self, state: SandboxState, region: str) -> list[ProcessRecord]:
        if region not in state.regions:
            raise UnknownRegion(region, state.regions)
        return [state.processes[f"moto-{region}"], state.processes[f"inference-{region}"]]

    def region_outage(self, region: str) -> None:
        """Stop the region's S3 and inference processes (SIGSTOP: clients time out, data survives)."""
        # Served by `mldr.sandbox.serve` (docker-compose): its processes are in another PID namespace.
        if (control := ControlClient.find(self.directory)) is not None:
            control.fault("region-outage", region)
        else:
            self.signal_region(region, signal.SIGSTOP)

    def heal(self, region: str) -> None:
        if (control := ControlClient.find(self.directory)) is not None:
            control.fault("heal", region)
        else:
            self.signal_region(region, signal.SIGCONT)

    def outages(self) -> dict[str, bool]:
        """region -> whether its processes are stopped, as this PID namespace sees them."""
        state = self.state
        if state is None:
            return {}
        named = state.processes
        return {
            region: any(
                process_stopped(p)
                for p in (named.get(f"moto-{region}"), named.get(f"inference-{region}"))
                if p
            )
            for region in state.regions
        }

    def signal_region(self, region: str, sig: signal.Signals) -> None:
        """Signal the region's processes from this PID namespace (the control endpoint's handler)."""
        state = self.running_state()
        for record in self._region_processes(state, region):
            os.kill(record.pid, sig)

    def replication(self, action: str, value: str | float | None = None) -> dict[str, Any]:
        state = self.running_state()
        url = state.replicator_url
        payloads: dict[str, dict[str, Any]] = {
            "pause": {"paused": True},
            "resume": {"paused": False},
            # the control-state table's replicas stop copying each other (a global table's stall)
            "control-split": {"control_split": True},
            "control-join": {"control_split": False},
        }
        if action in payloads:
            response = http.post(f"{url}/settings", json=payloads[action], timeout=5.0)
        elif action == "lag":
            seconds = _lag_seconds(value)
            response = http.post(f"{url}/settings", json={"lag_seconds": seconds}, timeout=5.0)
        elif action == "fail-keys":
            if not value:
                raise SandboxInputError("fail-keys needs a glob, e.g. `fail-keys 'reports/*.csv'`")
            current = http.get(f"{url}/stats", timeout=5.0).json()["settings"]["fail_globs"]
            response = http.post(f"{url}/settings", json={"fail_globs": [*current, str(value)]}, timeout=5.0)
        elif action == "clear":
            response = http.post(f"{url}/clear", timeout=5.0)
        else:
            raise SandboxInputError(
                f"unknown replication fault {action!r}: pause, resume, lag, fail-keys, control-split, "
                "control-join or clear"
            )
        if response.status_code != 200:
            raise SandboxError(f"replicator refused {action}: {response.text}")
        result: dict[str, Any] = response.json()
        return result
