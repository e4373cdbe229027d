"""The client factory: explicit timeouts, standard retries, endpoint from the connection."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldr.cloud.aws.clients import (
    PROBE_TIMEOUTS,
    AirflowHookSource,
    ClientFactory,
    Timeouts,
    aws_call,
    parse_airflow_connection,
)
from mldr.errors import AwsError, RegionUnreachable
from mldr.topology import load_topology_file

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"


def conn(endpoint: str) -> str:
    return json.dumps(
        {"conn_type": "aws", "login": "AKID", "password": "SECRET", "extra": {"endpoint_url": endpoint}}
    )


def test_parse_connection_json_and_uri() -> None:
    settings = parse_airflow_connection(conn("http://127.0.0.1:9000"))
    assert settings.endpoint_url == "http://127.0.0.1:9000"
    assert (settings.aws_access_key_id, settings.aws_secret_access_key) == ("AKID", "SECRET")
    uri = parse_airflow_connection("aws://KEY:S%2FECRET@/?endpoint_url=http%3A%2F%2Flocalhost%3A4566")
    assert uri.endpoint_url == "http://localhost:4566"
    assert uri.aws_secret_access_key == "S/ECRET"


def test_environment_clients_use_connection_endpoint_and_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    topology = load_topology_file(FIXTURE)
    monkeypatch.setenv("AIRFLOW_CONN_MLDR_AWS_US_WEST_2", conn("http://127.0.0.1:4999"))
    factory = ClientFactory.from_environment(topology)
    s3 = factory.client("s3", "us-west-2")
    assert s3.meta.endpoint_url == "http://127.0.0.1:4999"
    assert s3.meta.region_name == "us-west-2"
    assert s3.meta.config.connect_timeout == Timeouts().connect
    assert s3.meta.config.read_timeout == Timeouts().read
    assert s3.meta.config.retries["mode"] == "standard"
    probe = factory.client("s3", "us-west-2", timeouts=PROBE_TIMEOUTS)
    assert probe.meta.config.read_timeout == PROBE_TIMEOUTS.read
    assert factory.client("s3", "us-west-2") is s3  # cached


def test_each_region_signs_with_its_own_connection_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # one boto3 session serves every connection; the keys must still be each connection's own
    topology = load_topology_file(FIXTURE)
    for region, key in (("us_east_1", "EASTKEY"), ("us_west_2", "WESTKEY")):
        value = json.dumps(
            {
                "conn_type": "aws",
                "login": key,
                "password": f"{key}-secret",
                "extra": {"endpoint_url": "http://127.0.0.1:1"},
            }
        )
        monkeypatch.setenv(f"AIRFLOW_CONN_MLDR_AWS_{region.upper()}", value)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    factory = ClientFactory.from_environment(topology)
    east = factory.client("s3", "us-east-1")._get_credentials()
    west = factory.client("s3", "us-west-2")._get_credentials()
    assert (east.access_key, east.secret_key) == ("EASTKEY", "EASTKEY-secret")
    assert (west.access_key, west.secret_key) == ("WESTKEY", "WESTKEY-secret")


def test_airflow_hook_source_reads_endpoint_from_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    topology = load_topology_file(FIXTURE)
    monkeypatch.setenv("AIRFLOW_CONN_MLDR_AWS_US_EAST_1", conn("http://127.0.0.1:4888"))
    s3 = ClientFactory(topology, source=AirflowHookSource()).client("s3", "us-east-1")
    assert s3.meta.endpoint_url == "http://127.0.0.1:4888"
    assert s3.meta.config.read_timeout == Timeouts().read
    assert s3.meta.config.retries["mode"] == "standard"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A listener that accepts and never answers: what a SIGSTOPped region looks like."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for c in accepted:
        c.close()
    sock.close()


def test_stopped_region_is_a_clear_timeout_within_seconds(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    topology = load_topology_file(FIXTURE)
    monkeypatch.setenv("AIRFLOW_CONN_MLDR_AWS_US_EAST_1", conn(f"http://127.0.0.1:{silent_server}"))
    s3 = ClientFactory.from_environment(topology, timeouts=PROBE_TIMEOUTS).client("s3", "us-east-1")
    started = time.monotonic()
    with pytest.raises(RegionUnreachable) as info, aws_call("bucket mldr-x", region="us-east-1"):
        s3.head_bucket(Bucket="mldr-x")
    elapsed = time.monotonic() - started
    assert elapsed < PROBE_TIMEOUTS.read * PROBE_TIMEOUTS.max_attempts + 1.5
    assert "bucket mldr-x in us-east-1: no answer" in str(info.value)


def test_client_errors_are_wrapped_with_the_resource() -> None:
    from botocore.exceptions import ClientError

    with (
        pytest.raises(AwsError, match=r"bucket b in us-east-1: NoSuchBucket: gone"),
        aws_call("bucket b", region="us-east-1"),
    ):
        raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "HeadBucket")


def test_work_that_can_wait_asks_a_silent_region_once() -> None:
    from mldr.cloud.aws.clients import SilentRegions

    silent = SilentRegions()
    calls: list[str] = []

    def call(region: str) -> None:
        with silent.guard(region):
            calls.append(region)
            if region == "us-east-1":
                raise RegionUnreachable("no answer", resource="bucket", region=region)

    for _ in range(3):
        for region in ("us-east-1", "us-west-2"):
            with contextlib.suppress(RegionUnreachable):
                call(region)
    # the region that timed out was asked once; the one that answers, every time
    assert calls.count("us-east-1") == 1 and calls.count("us-west-2") == 3
    with pytest.raises(RegionUnreachable, match="us-east-1: did not answer"):
        call("us-east-1")
    silent.clear("us-east-1")
    with pytest.raises(RegionUnreachable, match="no answer"):
        call("us-east-1")  # asked again once it is known to answer
