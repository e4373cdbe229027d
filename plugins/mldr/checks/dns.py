"""What the inference DNS name answers, and what the failover records say.

In AWS the answer comes from Route 53's `TestDNSAnswer`; moto does not implement it, so in
the sandbox the edge's `/resolve` answers (it resolves the same records the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from mldr import http
from mldr.cloud.aws.clients import ClientFactory, aws_call
from mldr.errors import AwsError, RegionUnreachable
from mldr.topology import Topology


@dataclass(frozen=True)
class FailoverRecord:
    region: str  # SetIdentifier
    role: str  # PRIMARY | SECONDARY
    record: dict[str, Any]  # the full ResourceRecordSet, to UPSERT it back unchanged but for the role


def failover_records(factory: ClientFactory, topology: Topology) -> list[FailoverRecord]:
    inference = topology.inference
    r53 = factory.route53()
    name = inference.record_name if inference.record_name.endswith(".") else inference.record_name + "."
    records = []
    with aws_call(f"Route 53 records {name}"):
        pages = r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=inference.hosted_zone_id)
        for page in pages:
            for rrs in page["ResourceRecordSets"]:
                if rrs["Name"] == name and rrs.get("Failover"):
                    records.append(FailoverRecord(rrs["SetIdentifier"], rrs["Failover"], rrs))
    return records


def records_primary(factory: ClientFactory, topology: Topology) -> str | None:
    """The region whose failover record is PRIMARY."""
    for record in failover_records(factory, topology):
        if record.role == "PRIMARY":
            return record.region
    return None


def dns_answer(factory: ClientFactory, topology: Topology) -> str:
    """The region the DNS name resolves to right now, as a client would see it."""
    if topology.sandbox is not None:
        try:
            answer = http.get(f"{topology.sandbox.edge_url}/resolve", timeout=2.0).json()["answer"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise RegionUnreachable(f"the sandbox edge did not answer: {exc}", resource="edge") from exc
        return str(answer)
    r53 = factory.route53()
    with aws_call(f"Route 53 TestDNSAnswer {topology.inference.record_name}"):
        result = r53.test_dns_answer(
            HostedZoneId=topology.inference.hosted_zone_id,
            RecordName=topology.inference.record_name,
            RecordType="A",
        )
    # Alias records answer the load balancer's addresses; map them back to a region by endpoint.
    answers = result.get("RecordData", [])
    for region, cfg in topology.regions.items():
        host = cfg.endpoint_url.split("://", 1)[-1].split("/", 1)[0]
        if any(host in a or a in host for a in answers):
            return region
    raise AwsError(f"answer {answers} matches no region's endpoint", resource=topology.inference.record_name)
