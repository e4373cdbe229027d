"""Route 53 failover records as the runbooks' traffic switch (`mldr.cloud.Traffic`).

We swap which record is PRIMARY rather than flip health checks (see `mldr.actions.traffic`).
The answer a client gets comes from Route 53's `TestDNSAnswer` - for alias records the alias
target's addresses, matched to a region by resolving each record's target. moto implements
neither it nor `GetHealthCheckStatus`; in the sandbox the edge answers both, as Route 53 does.
"""

from __future__ import annotations

import copy
import logging
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory
from mldr.cloud.aws.errors import aws_call
from mldr.cloud.calls import Timeouts
from mldr.cloud.traffic import CheckerReport, DetectionWindow, Route, RouteRole, healthy_by_share
from mldr.errors import AwsError, MldrError, RegionUnreachable

log = logging.getLogger(__name__)

#: A load balancer's name resolves in milliseconds; a resolver that hangs must not hang the switch.
RESOLVE_TIMEOUT = 3.0


def resolve_addresses(name: str, *, timeout: float = RESOLVE_TIMEOUT) -> set[str]:
    """IPv4 addresses of `name` from the system resolver, bounded: getaddrinfo takes no timeout,
    so it runs on a worker thread that is abandoned (not waited for) when it is late."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resolve")
    try:
        infos = pool.submit(socket.getaddrinfo, name, None, family=socket.AF_INET).result(timeout=timeout)
    except FutureTimeout:
        raise RegionUnreachable(f"resolving {name}: no answer within {timeout:g}s", resource=name) from None
    except (OSError, UnicodeError) as exc:
        raise AwsError(f"resolving {name}: {exc}", resource=name) from exc
    finally:
        pool.shutdown(wait=False)
    return {str(info[4][0]) for info in infos}


def record_addresses(rrset: dict[str, Any], resolve: Callable[[str], set[str]]) -> set[str]:
    """What DNS answers for a record set: an alias target's addresses, else its own values."""
    alias = rrset.get("AliasTarget")
    if alias:
        return resolve(str(alias["DNSName"]).rstrip("."))
    return {str(v["Value"]) for v in rrset.get("ResourceRecords", [])}


@dataclass(frozen=True)
class _Record:
    route: Route
    record: dict[str, Any]  # the full ResourceRecordSet, to UPSERT it back unchanged but for the role


class Route53Traffic:
    def __init__(
        self,
        factory: ClientFactory,
        *,
        timeouts: Timeouts | None = None,
        resolve: Callable[[str], set[str]] = resolve_addresses,
    ) -> None:
        self.factory = factory
        self.resolve = resolve
        self.timeouts = timeouts
        self.topology = factory.topology
        name = self.topology.inference.record_name
        self.name = name if name.endswith(".") else name + "."

    def _client(self, timeouts: Timeouts | None = None) -> Any:
        return self.factory.route53(timeouts=timeouts or self.timeouts)

    def _data_plane(self) -> Any:
        return self.factory.route53_data_plane(timeouts=self.timeouts or PROBE_TIMEOUTS)

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
        """The region the DNS name answers now, from Route 53's `TestDNSAnswer`.

        For an alias record Route 53 answers the alias target's addresses, not its hostname, so
        each failover record's addresses are found as a resolver would (alias: the target's
        name resolved; plain: its values) and the answer must match exactly one region's.
        """
        topology = self.topology
        with aws_call(f"Route 53 TestDNSAnswer {topology.inference.record_name}"):
            result = self._data_plane().test_dns_answer(
                HostedZoneId=topology.inference.hosted_zone_id,
                RecordName=topology.inference.record_name,
                RecordType="A",
            )
        answers = set(result.get("RecordData", []))
        if not answers:
            raise AwsError(
                f"TestDNSAnswer gave no address ({result.get('ResponseCode')})",
                resource=topology.inference.record_name,
            )
        by_region = {r.route.region: record_addresses(r.record, self.resolve) for r in self._records()}
        matching = sorted(region for region, addresses in by_region.items() if answers & addresses)
        if len(matching) != 1:
            known = "; ".join(f"{region}: {sorted(a)}" for region, a in sorted(by_region.items()))
            raise AwsError(
                f"TestDNSAnswer {sorted(answers)} matches {len(matching)} failover record(s), not one "
                f"({known}): check the records' alias targets",
                resource=topology.inference.record_name,
            )
        return matching[0]

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
        return healthy_by_share(self.checker_reports(region))

    def checker_reports(self, region: str) -> list[CheckerReport]:
        check_id = self.topology.region(region).health_check_id
        with aws_call(f"Route 53 health check {check_id}"):
            observations = self._data_plane().get_health_check_status(HealthCheckId=check_id)[
                "HealthCheckObservations"
            ]
        return [
            CheckerReport(
                checker=str(o.get("Region", o.get("IPAddress", "?"))),
                healthy=str(o["StatusReport"]["Status"]).startswith("Success"),
                status=str(o["StatusReport"]["Status"]),
            )
            for o in observations
        ]

    def detection_window(self, region: str) -> DetectionWindow:
        check_id = self.topology.region(region).health_check_id
        with aws_call(f"Route 53 health check {check_id}"):
            config = self._client().get_health_check(HealthCheckId=check_id)["HealthCheck"][
                "HealthCheckConfig"
            ]
        return DetectionWindow(
            float(config.get("RequestInterval", 30)), int(config.get("FailureThreshold", 3))
        )
