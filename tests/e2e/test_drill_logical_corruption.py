"""The logical-corruption drill end to end against the sandbox, through `mldr drill`: a bad run
damages data and the served model, replication copies it, the standby shows it against the
recovery point, the restore and the rollback bring both regions back to it exactly."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.ml.registry import ARTIFACTS_DATASET, DEFAULT_MODEL_NAME, current_key
from mldr.runbooks.drill.corruption import SEED_BYTES, SEED_KEYS
from mldr.runbooks.drill.state import DrillStateStore, Phase
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology, load_topology
from tests.integration.test_failover import snapshot

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


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
    topology: Topology, factory: ClientFactory, tmp_path: Path, capsys: Any
) -> None:
    from mldr.cli import main

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

    report = Path(summary["report"]).read_text()
    assert "logical-corruption" in report and "late-000.csv" in report and "PASS" in report
    state = DrillStateStore(cloud.control()).load()
    assert state is not None and state.phase is Phase.DONE
    assert cloud.control().read_lease().operation is None
    # Every dataset in both regions as before the drill, key for key and checksum for checksum:
    # the model's training snapshot and CURRENT back, the broken version's registration and the
    # drill's own data gone.
    settled(factory, topology, before)
