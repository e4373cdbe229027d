"""The sandbox's edge answers Route 53's TestDNSAnswer (addresses, as for an alias record) and
GetHealthCheckStatus (from its probes); the switch confirms through them both ways (issue 13
item 4)."""

from __future__ import annotations

import ipaddress
import time

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.runbooks import failback, failover
from mldr.runbooks.engine import OperationStatus
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import Topology
from tests.integration import test_failover as base
from tests.integration.test_failover import dns_answer, run, snapshot, wait_replicated, write

topology, factory, on_primary = base.topology, base.factory, base.on_primary

pytestmark = pytest.mark.sandbox


def _test_dns_answer(factory: ClientFactory, topology: Topology) -> list[str]:
    """TestDNSAnswer through a Route 53 client, as the runbook's traffic switch calls it."""
    answer = factory.route53_data_plane().test_dns_answer(
        HostedZoneId=topology.inference.hosted_zone_id,
        RecordName=topology.inference.record_name,
        RecordType="A",
    )
    assert answer["ResponseCode"] == "NOERROR"
    return list(answer["RecordData"])


def _record_values(factory: ClientFactory, topology: Topology) -> dict[str, list[str]]:
    sets = factory.route53().list_resource_record_sets(HostedZoneId=topology.inference.hosted_zone_id)
    return {
        s["SetIdentifier"]: [v["Value"] for v in s.get("ResourceRecords", [])]
        for s in sets["ResourceRecordSets"]
        if s.get("Failover")
    }


def test_the_switch_confirms_through_test_dns_answer_both_ways(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    values = _record_values(factory, topology)
    assert values[primary] != values[secondary], "each region's record answers its own addresses"
    written = write(factory, topology, primary, "route53-answer", 6)
    wait_replicated(factory, topology, written, secondary)
    before = {r: snapshot(factory, topology, r) for r in topology.region_names}

    addresses = _test_dns_answer(factory, topology)
    assert all(ipaddress.ip_address(a) for a in addresses), f"addresses, not hostnames: {addresses}"
    assert addresses == values[primary]
    traffic = AwsCloud(factory).traffic()
    assert traffic.answer() == primary

    done = run(topology, factory, "failover", secondary)
    assert done.status is OperationStatus.COMPLETED, done.message
    assert done.result(failover.switch).answer == secondary
    assert _test_dns_answer(factory, topology) == values[secondary]
    assert traffic.answer() == secondary == dns_answer(sandbox_state)

    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message
    assert back.result(failback.failback_switch).answer == primary
    assert _test_dns_answer(factory, topology) == values[primary]
    assert traffic.answer() == primary == dns_answer(sandbox_state)

    after = {r: snapshot(factory, topology, r) for r in topology.region_names}
    assert {r: len(s) for r, s in after.items()} == {r: len(s) for r, s in before.items()}
    assert after == before, "objects and checksums unchanged by the round trip"


def test_health_check_status_comes_from_the_edge_probes(
    topology: Topology, factory: ClientFactory, sandbox: Sandbox, on_primary: None
) -> None:
    secondary = topology.secondary_region
    traffic = AwsCloud(factory).traffic()
    assert traffic.checker_healthy(secondary) is True
    sandbox.region_outage(secondary)
    try:
        deadline = time.monotonic() + 30  # the sandbox's probe interval x threshold, with room
        while traffic.checker_healthy(secondary) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert traffic.checker_healthy(secondary) is False, "the checkers see the stopped region"
        assert traffic.checker_healthy(topology.primary_region) is True
    finally:
        sandbox.heal(secondary)
    deadline = time.monotonic() + 30
    while not traffic.checker_healthy(secondary) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert traffic.checker_healthy(secondary) is True
