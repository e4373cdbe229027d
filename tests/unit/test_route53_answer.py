"""Route 53 answers `TestDNSAnswer` for an alias record with the alias target's addresses, never
its hostname: the traffic switch must confirm the region from those addresses (issue 13 item 4)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from mldr.cloud.aws.cloud import AwsCloud
from mldr.errors import AwsError
from mldr.topology import Topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"
#: Each region's load balancer and the addresses its name resolves to at the moment.
LOAD_BALANCERS = {
    "us-east-1": ("mldr-use1-123.us-east-1.elb.amazonaws.com", ["52.1.1.1", "52.1.1.2"]),
    "us-west-2": ("mldr-usw2-456.us-west-2.elb.amazonaws.com", ["44.2.2.1", "44.2.2.2"]),
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system resolver, as it answers for the load balancers' names."""
    addresses = {name: ips for name, ips in LOAD_BALANCERS.values()}

    def getaddrinfo(host: str, *_args: Any, **_kwargs: Any) -> list[Any]:
        if host not in addresses:
            raise socket.gaierror(f"{host}: unknown name")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0)) for ip in addresses[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _alias_records(cloud: AwsCloud, topology: Topology) -> tuple[Topology, Any]:
    """Failover alias records as infra/ declares them (components/failover_dns.py)."""
    route53 = cloud.factory.route53()
    zone = route53.create_hosted_zone(Name="example.com.", CallerReference="t")["HostedZone"]["Id"]
    zone_id = zone.rsplit("/", 1)[-1]
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": topology.inference.record_name,
                "Type": "A",
                "SetIdentifier": region,
                "Failover": "PRIMARY" if region == topology.primary_region else "SECONDARY",
                "AliasTarget": {
                    "HostedZoneId": "Z35SXDOTRQ7X7K",
                    "DNSName": name,
                    "EvaluateTargetHealth": False,
                },
            },
        }
        for region, (name, _) in LOAD_BALANCERS.items()
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    inference = topology.inference.model_copy(update={"hosted_zone_id": zone_id})
    return topology.model_copy(update={"inference": inference}), route53


class DataPlane:
    """Route 53's TestDNSAnswer (moto lacks it): for an alias record, the target's addresses."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    def test_dns_answer(self, **_kwargs: Any) -> dict[str, Any]:
        return {"RecordData": self.addresses, "ResponseCode": "NOERROR"}


def _answering(monkeypatch: pytest.MonkeyPatch, cloud: AwsCloud, addresses: list[str]) -> None:
    plane = DataPlane(addresses)
    monkeypatch.setattr(cloud.factory, "route53_data_plane", lambda **_kw: plane, raising=False)
    # the call as the code before this change made it, on the control-plane client
    monkeypatch.setattr(cloud.factory.route53(), "test_dns_answer", plane.test_dns_answer, raising=False)


def test_the_answer_is_the_region_whose_alias_target_has_those_addresses(
    aws: None, resolver: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = Topology.model_validate_json(FIXTURE.read_text())
    topology, _ = _alias_records(AwsCloud.from_environment(base), base)
    cloud = AwsCloud.from_environment(topology)
    for region in ("us-east-1", "us-west-2", "us-east-1"):  # a failover, then a failback
        _answering(monkeypatch, cloud, LOAD_BALANCERS[region][1])
        assert cloud.traffic().answer() == region


def test_addresses_of_no_region_are_an_error_naming_them(
    aws: None, resolver: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = Topology.model_validate_json(FIXTURE.read_text())
    topology, _ = _alias_records(AwsCloud.from_environment(base), base)
    cloud = AwsCloud.from_environment(topology)

    _answering(monkeypatch, cloud, ["198.51.100.7"])
    with pytest.raises(AwsError, match=r"198\.51\.100\.7.*matches 0 failover record"):
        cloud.traffic().answer()
