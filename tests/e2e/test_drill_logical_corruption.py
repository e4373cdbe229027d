"""The logical-corruption drill end to end against the sandbox, through `mldr drill`: a bad run
damages data and the served model, replication copies it, the standby shows it against the
recovery point, the restore and the rollback bring both regions back to it exactly. And the same
drill killed right after the damage, undone by `mldr drill --recover`. (Through the DAG:
tests/dags/test_dr_drill.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.ml.registry import ARTIFACTS_DATASET, DEFAULT_MODEL_NAME, current_key
from mldr.runbooks.drill.corruption import SEED_BYTES, SEED_KEYS
from mldr.runbooks.drill.load import canary_prefix, list_canary_keys
from mldr.runbooks.drill.params import canary_dataset
from mldr.runbooks.drill.state import DrillStateStore, Phase
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology, load_topology
from tests.integration.test_failover import snapshot

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

PLUGINS = Path(__file__).parents[2] / "plugins"


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


def datasets(factory: ClientFactory, topology: Topology) -> dict[str, dict[str, str]]:
    """Every current key of every dataset, per region, with its SHA-256; the model's CURRENT
    pointer by the version it names (the rollback writes it anew, as JSON of its own layout)."""
    out = {}
    for region in topology.region_names:
        state = snapshot(factory, topology, region)
        pointer = f"{ARTIFACTS_DATASET}/{current_key(DEFAULT_MODEL_NAME)}"
        if pointer in state:
            bucket = topology.dataset(ARTIFACTS_DATASET).buckets[region]
            body = factory.client("s3", region).get_object(Bucket=bucket, Key=current_key(DEFAULT_MODEL_NAME))
            state[pointer] = json.loads(body["Body"].read())["version"]
        out[region] = state
    return out


def settled(factory: ClientFactory, topology: Topology, expected: dict[str, dict[str, str]]) -> None:
    """Both regions reach `expected` (replication of the restore's last writes takes ~a second)."""
    deadline = time.monotonic() + 30
    have: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        have = datasets(factory, topology)
        if have == expected:
            return
        time.sleep(0.5)
    for region in topology.region_names:
        differing = sorted(set(expected[region].items()) ^ set(have[region].items()))[:6]
        assert have[region] == expected[region], f"{region} differs from before the drill: {differing}"


def test_logical_corruption_drill_restores_data_and_model_exactly(
    topology: Topology, factory: ClientFactory, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mldr.cli import main

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://localhost:8080")

    cloud = AwsCloud(factory)
    assert cloud.control().read_lease().active_region == topology.primary_region
    before = datasets(factory, topology)

    code = main(["drill", "--scenario", "logical-corruption", "--json", "--out", str(tmp_path)])
    printed = capsys.readouterr()
    assert printed.out.startswith("{"), f"exit {code}, no summary; the drill said:\n{printed.err[-3000:]}"
    summary = json.loads(printed.out)
    assert (code, summary["verdict"]) == (0, "pass"), summary["verdict_reason"]
    restore = summary["restore"]
    damage = restore["damage"]
    # 20 seeded keys: 7 overwritten and 3 deleted by the bad run; after the recovery point, one key
    # edited and one written (given up): 11 keys copied back, 1 delete marker
    assert (len(damage["overwritten"]), len(damage["deleted"])) == (7, 3)
    assert restore["recovery_point"]["keys"] == SEED_KEYS
    assert (restore["keys_reverted"], restore["keys_deleted"]) == (11, 1)
    assert restore["bytes_restored"] == 11 * SEED_BYTES
    assert restore["time_to_restore_seconds"] > 0
    prefix = restore["prefix"]
    given_up = sorted(g["key"] for g in restore["given_up"])
    assert given_up == [f"{prefix}late-000.csv", f"{prefix}part-001.csv"]
    for region in topology.region_names:
        assert restore["exact"][region] == {"exact": True, "missing": [], "extra": [], "different": []}
        assert restore["model_after"][region] is None

    detected = restore["detected"]
    assert set(detected["dataset"]["different"]) >= set(damage["overwritten"])
    assert set(detected["dataset"]["missing"]) == set(damage["deleted"])
    assert detected["model"]["serving"] == damage["broken_version"] and detected["model"]["broken"]
    assert detected["verification"]["state"] == "broken", "the nightly verification saw the damage too"

    # the report: a link a person opens (the DR dashboard under Airflow's base URL), its s3:// copies
    name = Path(summary["report"]).stem
    assert summary["report_url"] == f"http://localhost:8080/mldr/reports/drill/{name}"
    assert set(summary["reports"]) == set(topology.region_names)
    assert all(uri.endswith(f"/reports/drill/{name}.html") for uri in summary["reports"].values())
    report = Path(summary["report"]).read_text()
    assert "logical-corruption" in report and "late-000.csv" in report and "PASS" in report
    state = DrillStateStore(cloud.control()).load()
    assert state is not None and state.phase is Phase.DONE
    assert cloud.control().read_lease().operation is None
    # Every dataset in both regions as before the drill, key for key and checksum for checksum:
    # the model's training snapshot and CURRENT back, the broken version's registration and the
    # drill's own data gone.
    settled(factory, topology, before)


def serving(factory: ClientFactory, topology: Topology, region: str) -> str | None:
    """The model version the region's CURRENT pointer names."""
    bucket = topology.dataset(ARTIFACTS_DATASET).buckets[region]
    try:
        body = factory.client("s3", region).get_object(Bucket=bucket, Key=current_key(DEFAULT_MODEL_NAME))
    except factory.client("s3", region).exceptions.NoSuchKey:
        return None
    return str(json.loads(body["Body"].read())["version"])


def wait_for(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_logical_corruption_drill_is_recovered_by_drill_recover(
    topology: Topology, factory: ClientFactory, sandbox: Sandbox, tmp_path: Path, capsys: Any
) -> None:
    """Killed after the bad run (the model broken, its training snapshot overwritten, a broken
    version registered), before its restore: `mldr drill --recover` puts every dataset of both
    regions back as it was, the model served again, the lease free."""
    from mldr.cli import main

    cloud = AwsCloud(factory)
    drills = DrillStateStore(cloud.control())
    previous = drills.load()
    primary = topology.primary_region
    good = serving(factory, topology, primary)
    before = datasets(factory, topology)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
    argv = ["drill", "--scenario", "logical-corruption", "--out", str(tmp_path)]
    log_path = tmp_path / "drill.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mldr.cli", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:

        def point_recorded() -> bool:
            assert proc.poll() is None, log_path.read_text()
            state = drills.load()
            fresh = state is not None and (previous is None or state.drill_id != previous.drill_id)
            return fresh and state is not None and state.restore_to is not None

        wait_for("the drill to record its recovery point", point_recorded, 90)
        # Held in its detection (it waits for the damage to replicate): the kill lands after the
        # whole bad run, before any restore, however busy the machine.
        sandbox.replication("pause")

        def damaged() -> bool:
            assert proc.poll() is None, log_path.read_text()
            return "-broken-" in (serving(factory, topology, primary) or "")  # the bad run's last write

        wait_for("the bad run to register and serve a broken model", damaged, 60)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        sandbox.replication("resume")
    killed = drills.load()
    assert killed is not None and killed.damaged and killed.phase is Phase.FAULT, killed
    assert not killed.operations, "killed before its restore began"

    capsys.readouterr()
    assert main(["drill", "--recover"]) == 0
    out = capsys.readouterr().out
    assert f"rolled {DEFAULT_MODEL_NAME} back" in out, out

    lease = cloud.control().read_lease()
    assert (lease.active_region, lease.operation, lease.fenced_regions) == (primary, None, ())
    state = drills.load()
    assert state is not None and state.drill_id == killed.drill_id and state.phase is Phase.RECOVERED
    assert serving(factory, topology, primary) == good
    # every dataset of both regions as before the drill (the training snapshot, CURRENT, no broken
    # version's registration), checksum for checksum; the drill's own data gone
    settled(factory, topology, before)
    dataset = canary_dataset(topology)
    prefix = canary_prefix(dataset.prefix, killed.drill_id)
    for region in topology.region_names:
        assert list_canary_keys(cloud, region=region, bucket=dataset.buckets[region], prefix=prefix) == set()
    assert main(["drill", "--recover"]) == 0
    assert "nothing to recover" in capsys.readouterr().out
