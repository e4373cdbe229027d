"""After an unplanned failover the old primary comes back: it must be fenced, and nothing it
holds or takes may replicate into the active region and silently become the current version.
Counts objects and compares checksums before and after."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from mldr.checks.fence_duty import pending_fence_duties
from mldr.checks.replication_status import SandboxStatusSource
from mldr.cli import main
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.objects import ReplicationState
from mldr.runbooks import failover
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.engine import OperationStatus
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import Topology
from tests.dp_support import wait_for
from tests.integration.test_failover import (  # noqa: F401 - fixtures, used by name
    factory,
    lease,
    on_primary,
    run,
    snapshot,
    topology,
    wait_replicated,
    write,
)

pytestmark = pytest.mark.sandbox


def _status(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code = main(["status", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    document: dict[str, object] = json.loads(out)
    return document


def _settled(state: SandboxState, bucket: str, key: str, version_id: str) -> ReplicationState:
    """The replication status of one version once the replicator has tried it (not PENDING)."""
    statuses = SandboxStatusSource(state.replicator_url)
    found: list[ReplicationState] = []

    def tried() -> bool:
        found.append(statuses.status(region="", bucket=bucket, key=key, version_id=version_id))
        return found[-1] not in (ReplicationState.PENDING, ReplicationState.UNKNOWN)

    wait_for(f"the replicator to try {bucket}/{key}", tried, timeout=30.0)
    return found[-1]


def test_a_healed_old_primary_is_fenced_and_what_it_takes_never_wins_in_the_active_region(
    topology: Topology,  # noqa: F811
    factory: ClientFactory,  # noqa: F811
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    on_primary: None,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    dataset = topology.datasets[0]
    p_bucket, s_bucket = dataset.buckets[primary], dataset.buckets[secondary]
    tag = f"healed-{uuid.uuid4().hex[:8]}"
    base = write(factory, topology, primary, f"{tag}/base", 4)
    wait_replicated(factory, topology, base, secondary)
    # A version the primary acknowledged but never replicated: the data at risk of the failover.
    sandbox.replication("pause")
    p_s3, s_s3 = factory.client("s3", primary), factory.client("s3", secondary)
    at_risk = p_s3.put_object(Bucket=p_bucket, Key=f"{tag}/at-risk", Body=b"primary, before the outage")
    sandbox.region_outage(primary)
    sandbox.replication("resume")

    record = run(topology, factory, "failover", secondary, "unplanned")

    assert record.status is OperationStatus.COMPLETED, record.message
    assert record.result(failover.protect).fence_duty is not None
    assert "DUTY LEFT" in record.message
    (duty,) = _status(capsys)["fence_duties"]  # type: ignore[misc]
    assert (duty["region"], duty["operation_id"], duty["status"]) == (primary, record.id, "pending")
    # Clients write to the active region; then the old primary heals and takes a write of the
    # same key (a client still pointed at it), half a second later.
    key = f"{tag}/contested"
    active_body = b"active region, after the failover"
    s_s3.put_object(Bucket=s_bucket, Key=key, Body=active_body)
    before_heal = snapshot(factory, topology, secondary)
    sandbox.heal(primary)
    stale = p_s3.put_object(Bucket=p_bucket, Key=key, Body=b"old primary, after the heal")

    # What the old primary took, before and after the outage, is refused by the active region:
    # it never becomes a current version there.
    assert _settled(sandbox_state, p_bucket, key, stale["VersionId"]) is ReplicationState.FAILED
    assert (
        _settled(sandbox_state, p_bucket, f"{tag}/at-risk", at_risk["VersionId"]) is ReplicationState.FAILED
    )
    current = s_s3.get_object(Bucket=s_bucket, Key=key)["Body"].read()
    assert current == active_body, "the old primary's write became the current version in the active region"
    assert snapshot(factory, topology, secondary) == before_heal, "nothing in the active region changed"
    assert pending_fence_duties(AwsCloud(factory).control(), lease(factory)), "the duty waits for a check"

    # The next `mldr lag` reaches the old primary: fenced, its outgoing rule disabled.
    main(["lag", "--no-report", "--dataset", dataset.name])
    err = capsys.readouterr().err
    assert f"fence duty {primary}" in err and "DONE" in err, err
    with pytest.raises(p_s3.exceptions.ClientError, match="AccessDenied"):
        p_s3.put_object(Bucket=p_bucket, Key=key, Body=b"old primary, after the lag check")
    status = _status(capsys)
    assert status["fence_duties"] == []
    assert primary in status["fenced_regions"]  # type: ignore[operator]
    rules = p_s3.get_bucket_replication(Bucket=p_bucket)["ReplicationConfiguration"]["Rules"]
    assert [r["Status"] for r in rules] == ["Disabled"]
    events = AuditLog(AwsCloud(factory), topology, AwsCloud(factory).control()).events(secondary, record.id)
    (done,) = [e for e in events if e["event"] == "fence-duty-done"]
    assert done["region"] == primary and p_bucket in done["fenced"]
    # the active region still holds exactly what its clients wrote, byte for byte (the lag
    # check's canaries aside)
    after = {k: v for k, v in snapshot(factory, topology, secondary).items() if "/_mldr/" not in k}
    assert after == {k: v for k, v in before_heal.items() if "/_mldr/" not in k}
    assert hashlib.sha256(s_s3.get_object(Bucket=s_bucket, Key=key)["Body"].read()).hexdigest() == (
        hashlib.sha256(active_body).hexdigest()
    )
