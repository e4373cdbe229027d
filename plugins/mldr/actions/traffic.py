"""Move the inference DNS name to a region by rewriting the failover records.

We swap which record is PRIMARY rather than flip health checks: after an outage the healed
old primary must not take traffic back on its own (its data is stale until failback resyncs
it), and a planned switchover must move traffic while both regions are healthy. Health
checks keep doing their job on top: if the new primary dies, Route 53 still answers the
SECONDARY.
"""

from __future__ import annotations

import copy
import logging
import time

from mldr.checks.dns import dns_answer, failover_records
from mldr.cloud.aws.clients import ClientFactory, aws_call
from mldr.errors import AwsError, MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)


def switch(
    factory: ClientFactory, topology: Topology, target: str, *, timeout: float = 120.0
) -> dict[str, object]:
    """Make `target` the PRIMARY record, wait for INSYNC, and confirm the answer."""
    topology.require_region(target)
    records = failover_records(factory, topology)
    regions = {r.region for r in records}
    if target not in regions:
        raise MldrError(
            f"no failover record for {target} under {topology.inference.record_name}: check infra/"
        )
    changes = []
    for record in records:
        role = "PRIMARY" if record.region == target else "SECONDARY"
        if record.role != role:
            rrs = copy.deepcopy(record.record)
            rrs["Failover"] = role
            changes.append({"Action": "UPSERT", "ResourceRecordSet": rrs})
    started = time.monotonic()
    r53 = factory.route53()
    if changes:
        with aws_call(f"Route 53 records {topology.inference.record_name}"):
            change = r53.change_resource_record_sets(
                HostedZoneId=topology.inference.hosted_zone_id,
                ChangeBatch={"Comment": f"mldr: {target} becomes PRIMARY", "Changes": changes},
            )["ChangeInfo"]
            while change["Status"] != "INSYNC":
                if time.monotonic() - started > timeout:
                    raise AwsError(
                        f"change {change['Id']} not INSYNC after {timeout:.0f}s", resource="Route 53"
                    )
                time.sleep(1.0)
                change = r53.get_change(Id=change["Id"])["ChangeInfo"]
        log.info("Route 53: %s is now PRIMARY (change INSYNC in %.1fs)", target, time.monotonic() - started)
    answer = None
    while time.monotonic() - started < timeout:
        answer = dns_answer(factory, topology)
        if answer == target:
            break
        time.sleep(0.2)
    else:
        raise MldrError(
            f"the DNS name still answers {answer} {timeout:.0f}s after the switch to {target}: "
            f"check {target}'s health check (an unhealthy PRIMARY is skipped)"
        )
    return {"changed": bool(changes), "answer": answer, "seconds": round(time.monotonic() - started, 3)}
