"""Route 53 failover records as the runbooks' traffic switch (`mldr.cloud.Traffic`).

We swap which record is PRIMARY rather than flip health checks (see `mldr.actions.traffic`).
The answer a client gets comes from Route 53's `TestDNSAnswer`; moto does not implement it, so
in the sandbox the edge's `/resolve` answers (it resolves the same records the same way).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from mldr import http
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.errors import aws_call
from mldr.cloud.calls import Timeouts
from mldr.cloud.traffic import DetectionWindow, Route, RouteRole
from mldr.errors import AwsError, MldrError, RegionUnreachable

log = logging.getLogger(__name__)

#: Route 53 considers an endpoint healthy when more than 18% of its checkers do.
HEALTHY_CHECKER_SHARE = 0.18


@dataclass(frozen=True)
class _Record:
    route: Route
    record: dict[str, Any]  # the full ResourceRecordSet, to UPSERT it back unchanged but for the role


class Route53Traffic:
    def __init__(self, factory: ClientFactory, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.timeouts = timeouts
        self.topology = factory.topology
        name = self.topology.inference.record_name
        self.name = name if name.endswith(".") else name + "."

    def _client(self, timeouts: Timeouts | None = None) -> Any:
        return self.factory.route53(timeouts=timeouts or self.timeouts)

    def _records(self) -> list[_Record]:
        records = []
        with aws_call(f"Route 53 records {self.name}"):
            pages = (
                self._client()
                .get_paginator("list_resource_record_sets")
                .paginate(HostedZoneId=self.topology.inference.hosted_zone_id)
            )
            for page in pages:
                for rrs in page["ResourceRecordSets"]:
                    if rrs["Name"] == self.name and rrs.get("Failover"):
                        records.append(_Record(Route(rrs["SetIdentifier"], RouteRole(rrs["Failover"])), rrs))
        return records

    def routes(self) -> list[Route]:
        return [r.route for r in self._records()]

    def answer(self) -> str:
        topology = self.topology
        if topology.sandbox is not None:
            try:
                answer = http.get(f"{topology.sandbox.edge_url}/resolve", timeout=2.0).json()["answer"]
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise RegionUnreachable(f"the sandbox edge did not answer: {exc}", resource="edge") from exc
            return str(answer)
        with aws_call(f"Route 53 TestDNSAnswer {topology.inference.record_name}"):
            result = self._client().test_dns_answer(
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
        raise AwsError(
            f"answer {answers} matches no region's endpoint", resource=topology.inference.record_name
        )

    def make_primary(self, region: str, *, timeout: float) -> bool:
        records = self._records()
        if region not in {r.route.region for r in records}:
            raise MldrError(
                f"no failover record for {region} under {self.topology.inference.record_name}: check infra/"
            )
        changes = []
        for record in records:
            role = RouteRole.PRIMARY if record.route.region == region else RouteRole.SECONDARY
            if record.route.role != role:
                rrs = copy.deepcopy(record.record)
                rrs["Failover"] = role.value
                changes.append({"Action": "UPSERT", "ResourceRecordSet": rrs})
        if not changes:
            return False
        started = time.monotonic()
        r53 = self._client()
        with aws_call(f"Route 53 records {self.topology.inference.record_name}"):
            change = r53.change_resource_record_sets(
                HostedZoneId=self.topology.inference.hosted_zone_id,
                ChangeBatch={"Comment": f"mldr: {region} becomes PRIMARY", "Changes": changes},
            )["ChangeInfo"]
            while change["Status"] != "INSYNC":
                if time.monotonic() - started > timeout:
                    raise AwsError(
                        f"change {change['Id']} not INSYNC after {timeout:.0f}s", resource="Route 53"
                    )
                time.sleep(1.0)
                change = r53.get_change(Id=change["Id"])["ChangeInfo"]
        log.info("Route 53: %s is now PRIMARY (change INSYNC in %.1fs)", region, time.monotonic() - started)
        return True

    def checker_healthy(self, region: str) -> bool:
        check_id = self.topology.region(region).health_check_id
        with aws_call(f"Route 53 health check {check_id}"):
            observations = self._client().get_health_check_status(HealthCheckId=check_id)[
                "HealthCheckObservations"
            ]
        healthy = [o for o in observations if o["StatusReport"]["Status"].startswith("Success")]
        return bool(observations) and len(healthy) / len(observations) > HEALTHY_CHECKER_SHARE

    def detection_window(self, region: str) -> DetectionWindow:
        check_id = self.topology.region(region).health_check_id
        with aws_call(f"Route 53 health check {check_id}"):
            config = self._client().get_health_check(HealthCheckId=check_id)["HealthCheck"][
                "HealthCheckConfig"
            ]
        return DetectionWindow(
            float(config.get("RequestInterval", 30)), int(config.get("FailureThreshold", 3))
        )
