"""What the runbooks store in the DR control-state table stays under DynamoDB's 400 KB per item
whatever the data: data at risk is a summary plus a pointer to the full list in S3, a resync
report names a bounded number of keys, a reason is a sentence."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

from mldr.actions.resync import KEYS_LISTED, DatasetResync
from mldr.checks.replication_status import BacklogItem, ReplicationState
from mldr.cloud.calls import SilentRegions
from mldr.errors import ConfigurationError, MldrError, RegionUnreachable
from mldr.runbooks import at_risk, failover
from mldr.runbooks.at_risk import AT_RISK_LISTED, DataAtRisk, data_at_risk, describe_risk, load_full_list
from mldr.runbooks.engine import result_to_json
from mldr.runbooks.params import MAX_REASON, validate_reason
from mldr.topology import Topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"
ITEM_LIMIT = 400 * 1024
N = 5_000


class Store:
    def __init__(self, region: str, cloud: Cloud) -> None:
        self.region, self.cloud = region, cloud

    def put_json(self, bucket: str, key: str, document: Any, **_: Any) -> None:
        if self.region in self.cloud.down:
            raise RegionUnreachable(
                "no answer (ReadTimeoutError)", resource=f"s3://{bucket}", region=self.region
            )
        self.cloud.objects_stored[(self.region, bucket, key)] = json.dumps(document, default=str)

    def get_json(self, bucket: str, key: str) -> Any:
        if self.region in self.cloud.down:
            raise RegionUnreachable(
                "no answer (ReadTimeoutError)", resource=f"s3://{bucket}", region=self.region
            )
        return json.loads(self.cloud.objects_stored[(self.region, bucket, key)])


class Cloud:
    def __init__(self) -> None:
        self.down: set[str] = set()
        self.objects_stored: dict[tuple[str, str, str], str] = {}
        self.silent = SilentRegions()

    def objects(self, region: str, **_: Any) -> Store:
        return Store(region, self)


class Statuses:
    def __init__(self, items: list[BacklogItem]) -> None:
        self.items = items

    def backlog(self, *, region: str, bucket: str) -> list[BacklogItem]:
        return [i for i in self.items if i.bucket == bucket]


@pytest.fixture
def topology() -> Topology:
    return Topology.model_validate_json(FIXTURE.read_text())


def backlog(topology: Topology, region: str, n: int) -> list[BacklogItem]:
    now = time.time()
    buckets = [d.buckets[region] for d in topology.datasets]
    return [
        BacklogItem(
            bucket=buckets[i % len(buckets)],
            key=f"k/{i:05d}-" + "x" * 192,
            version_id=f"v{i:032d}",
            state=ReplicationState.FAILED if i % 100 == 0 else ReplicationState.PENDING,
            size=10 + i,
            created_at=now - 60 + i * 0.001,
        )
        for i in range(n)
    ]


def measure(topology: Topology, cloud: Cloud, items: list[BacklogItem], monkeypatch: Any) -> DataAtRisk:
    monkeypatch.setattr(at_risk, "status_source", lambda _t, _c: Statuses(items))
    ctx = SimpleNamespace(topology=topology, cloud=cloud, record=SimpleNamespace(id="failover-test"))
    risk = data_at_risk(ctx, topology.primary_region, label="drain")  # type: ignore[arg-type]
    assert isinstance(risk, DataAtRisk)
    return risk


def test_thousands_of_keys_at_risk_are_summarised_inline_and_listed_in_full_in_s3(
    topology: Topology, monkeypatch: Any
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    cloud = Cloud()
    cloud.down.add(primary)  # unplanned: the source is the region that is down
    items = backlog(topology, primary, N)

    risk = measure(topology, cloud, items, monkeypatch)

    stored = json.dumps(result_to_json(failover.drain, failover.NotDrained(data_at_risk=risk)))
    assert len(stored.encode()) < ITEM_LIMIT / 8, "the result stays small whatever the data at risk"
    assert (risk.objects, risk.bytes, risk.failed) == (N, sum(10 + i for i in range(N)), N // 100)
    assert [k.key for k in risk.first_keys] == [i.key for i in items[:AT_RISK_LISTED]], "the oldest first"
    assert risk.full_list is not None and risk.full_list.regions == (secondary,)
    assert risk.full_list.not_stored[0].startswith(f"{primary}: ")
    uri = f"s3://{topology.region(secondary).ops_bucket}/data-at-risk/failover-test/drain.json"
    assert risk.full_list.uris == (uri,)
    assert f"full list: {uri}" in describe_risk(risk)
    listed = load_full_list(cloud, topology, risk)  # type: ignore[arg-type]
    assert [(k.bucket, k.key, k.version_id, k.state) for k in listed] == [
        (i.bucket, i.key, i.version_id, i.state) for i in items
    ]


def test_the_full_list_goes_to_every_region_that_answers_and_is_read_from_any(
    topology: Topology, monkeypatch: Any
) -> None:
    cloud = Cloud()
    risk = measure(topology, cloud, backlog(topology, topology.primary_region, 120), monkeypatch)
    assert risk.full_list is not None and risk.full_list.regions == tuple(topology.region_names)
    cloud.down.add(topology.region_names[0])
    assert len(load_full_list(cloud, topology, risk)) == 120  # type: ignore[arg-type]


def test_when_no_region_takes_the_list_the_failover_goes_on_and_says_so(
    topology: Topology, monkeypatch: Any
) -> None:
    cloud = Cloud()
    cloud.down.update(topology.region_names)
    risk = measure(topology, cloud, backlog(topology, topology.primary_region, 80), monkeypatch)
    assert risk.objects == 80 and len(risk.first_keys) == AT_RISK_LISTED
    assert "the full list could not be stored" in describe_risk(risk)
    with pytest.raises(MldrError, match=f"stored in no region.*only the first {AT_RISK_LISTED}"):
        load_full_list(cloud, topology, risk)  # type: ignore[arg-type]


def test_nothing_at_risk_stores_nothing(topology: Topology, monkeypatch: Any) -> None:
    cloud = Cloud()
    risk = measure(topology, cloud, [], monkeypatch)
    assert risk.objects == 0 and risk.full_list is None and cloud.objects_stored == {}
    assert load_full_list(cloud, topology, risk) == ()  # type: ignore[arg-type]


def test_a_resync_report_names_a_bounded_number_of_keys_and_counts_them_all() -> None:
    report = DatasetResync(dataset="training-data")
    report.changed_during = [f"k/{i:05d}-" + "x" * 192 for i in range(N)]
    report.failures = [f"k/{i:05d}: AccessDenied" for i in range(KEYS_LISTED + 1)]
    public = report.public()
    assert public["changed_during"] == report.changed_during[:KEYS_LISTED]
    assert public["changed_during_count"] == N
    assert (len(public["failures"]), public["failures_count"]) == (KEYS_LISTED, KEYS_LISTED + 1)
    assert len(json.dumps(public).encode()) < ITEM_LIMIT / 8


def test_a_reason_is_a_sentence_not_a_document() -> None:
    assert validate_reason("x" * MAX_REASON) == "x" * MAX_REASON
    with pytest.raises(ConfigurationError, match=f"at most {MAX_REASON} characters"):
        validate_reason("x" * (MAX_REASON + 1))


def test_the_approver_reads_where_every_version_at_risk_is_listed(
    topology: Topology, monkeypatch: Any
) -> None:
    from mldr.airflow.approval_text import approval_body

    cloud = Cloud()
    risk = measure(topology, cloud, backlog(topology, topology.primary_region, 60), monkeypatch)
    preflight = {"source": "us-east-1", "target": "us-west-2", "mode": "unplanned", "data_at_risk": risk}
    stored = json.loads(json.dumps(preflight, default=to_jsonable_python))  # as the task returns it
    body = approval_body("failover", stored)
    assert "| Data at risk | 60 object(s)" in body
    assert all(uri in body for uri in risk.full_list.uris)  # type: ignore[union-attr]
