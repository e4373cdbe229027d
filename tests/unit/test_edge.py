"""The sandbox edge: Route 53 failover rules, health-check thresholds, and the running edge.

The integration test runs the real `python -m mldr.sandbox.edge` against an in-process moto
server and two tiny HTTP upstreams standing in for the regions' inference servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from mldr.errors import SandboxError
from mldr.sandbox.edge import (
    PROBE_INTERVAL_TAG,
    SERVED_BY_HEADER,
    Edge,
    HealthCheckSpec,
    Snapshot,
    health_check_spec,
)
from mldr.sandbox.failover_routing import (
    CheckState,
    FailoverRecord,
    FailoverRole,
    HealthStatus,
    choose_answer,
    observe,
)

REPO = Path(__file__).resolve().parents[2]

# --- failover routing -------------------------------------------------------------------------

PRIMARY = FailoverRecord("us-east-1", FailoverRole.PRIMARY, "hc-p", "http://127.0.0.1:1")
SECONDARY = FailoverRecord("us-west-2", FailoverRole.SECONDARY, "hc-s", "http://127.0.0.1:2")


@pytest.mark.parametrize(
    ("primary_ok", "secondary_ok", "expected"),
    [
        (True, True, "us-east-1"),
        (True, False, "us-east-1"),
        (False, True, "us-west-2"),
        # Route 53 fails open: all unhealthy is answered as all healthy.
        (False, False, "us-east-1"),
    ],
)
def test_failover_answer_follows_route53_rules(primary_ok: bool, secondary_ok: bool, expected: str) -> None:
    answer = choose_answer([SECONDARY, PRIMARY], {"hc-p": primary_ok, "hc-s": secondary_ok})
    assert answer.region == expected, answer.reason


def test_records_without_health_checks_count_as_healthy() -> None:
    unchecked_primary = FailoverRecord("us-east-1", FailoverRole.PRIMARY, None, "http://127.0.0.1:1")
    assert choose_answer([unchecked_primary, SECONDARY], {"hc-s": True}).region == "us-east-1"
    unchecked_secondary = FailoverRecord("us-west-2", FailoverRole.SECONDARY, None, "http://127.0.0.1:2")
    assert choose_answer([PRIMARY, unchecked_secondary], {"hc-p": False}).region == "us-west-2"


def test_unobserved_check_counts_as_healthy_and_no_records_means_no_answer() -> None:
    assert choose_answer([PRIMARY, SECONDARY], {}).region == "us-east-1"
    assert choose_answer([], {}).record is None
    assert choose_answer([SECONDARY], {"hc-s": False}).region == "us-west-2"


# --- health-check state machine ------------------------------------------------------------------


def _run(results: list[bool], *, threshold: int, state: CheckState | None = None) -> list[CheckState]:
    states, current = [], state or CheckState()
    for i, ok in enumerate(results):
        current = observe(current, ok=ok, threshold=threshold, at=float(i), error=None if ok else f"fail {i}")
        states.append(current)
    return states


def test_new_check_is_unknown_and_routable_until_threshold() -> None:
    states = _run([False, False, False], threshold=3)
    assert [s.status for s in states] == [HealthStatus.UNKNOWN, HealthStatus.UNKNOWN, HealthStatus.UNHEALTHY]
    assert states[0].routable and states[0].healthy is None
    assert not states[2].routable and states[2].healthy is False
    assert states[2].last_change_at == 2.0 and states[2].last_error == "fail 2"


def test_healthy_turns_unhealthy_only_after_threshold_consecutive_failures() -> None:
    healthy = _run([True, True], threshold=2)[-1]
    assert healthy.status is HealthStatus.HEALTHY and healthy.last_change_at == 1.0
    # A success in between resets the count.
    states = _run([False, True, False, False], threshold=2, state=healthy)
    assert [s.status for s in states] == [HealthStatus.HEALTHY] * 3 + [HealthStatus.UNHEALTHY]
    assert states[-1].consecutive_failures == 2 and states[-1].last_change_at == 3.0


def test_unhealthy_turns_healthy_only_after_threshold_consecutive_successes() -> None:
    unhealthy = _run([False, False], threshold=2)[-1]
    states = _run([True, False, True, True], threshold=2, state=unhealthy)
    assert [s.status for s in states] == [HealthStatus.UNHEALTHY] * 3 + [HealthStatus.HEALTHY]
    assert states[-1].consecutive_successes == 2 and states[-1].last_error == "fail 1"


def test_probe_interval_tag_overrides_request_interval() -> None:
    config = {"IPAddress": "127.0.0.1", "Port": 8001, "Type": "HTTP", "ResourcePath": "/healthz"}
    config |= {"RequestInterval": 10, "FailureThreshold": 2}
    spec = health_check_spec("hc", config, {PROBE_INTERVAL_TAG: "0.5"})
    assert (spec.interval_seconds, spec.probe_timeout, spec.url) == (
        0.5,
        0.5,
        "http://127.0.0.1:8001/healthz",
    )
    assert health_check_spec("hc", config, {}).interval_seconds == 10
    with pytest.raises(SandboxError, match=PROBE_INTERVAL_TAG):
        health_check_spec("hc", config, {PROBE_INTERVAL_TAG: "soon"})


# --- the running edge ---------------------------------------------------------------------------

INTERVAL, THRESHOLD, REFRESH, PROXY_TIMEOUT = 0.2, 2, 0.2, 1.5
RECORD = "api.mldr.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Upstream:
    """A stand-in inference server: /healthz (switchable), /hang, anything else echoes its region."""

    region: str
    healthy: bool = True
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if self.path == "/healthz":
                    status, body = (200 if upstream.healthy else 503), b"ok"
                elif self.path.startswith("/hang"):
                    upstream.release.wait(10)
                    status, body = 200, b"late"
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    payload = {
                        "region": upstream.region,
                        "method": self.command,
                        "path": self.path,
                        "body": self.rfile.read(length).decode(),
                    }
                    status, body = 200, json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("X-Upstream", upstream.region)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the edge gave up on a /hang request, as it should

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# --- probing, without Route 53 ------------------------------------------------------------------


@dataclass
class FixedRecords:
    """A stand-in for Route 53: the same records and checks on every refresh."""

    snapshot: Snapshot
    endpoint_url: str = "fixed"
    record_name: str = "api.mldr.test"

    def read(self) -> Snapshot:
        return self.snapshot


def _spec(check_id: str, port: int, path: str) -> HealthCheckSpec:
    return HealthCheckSpec(
        check_id, "HTTP", "127.0.0.1", port, path, interval_seconds=0.2, failure_threshold=2
    )


def test_a_hanging_health_endpoint_turns_unhealthy_and_fails_over() -> None:
    # What a SIGSTOPped region looks like to Route 53: connections open, nothing answers.
    hanging, healthy = Upstream("us-east-1"), Upstream("us-west-2")
    hanging.start()
    healthy.start()
    try:
        checks = {
            "hc-p": _spec("hc-p", hanging.port, "/hang"),
            "hc-s": _spec("hc-s", healthy.port, "/healthz"),
        }
        records = (
            FailoverRecord("us-east-1", FailoverRole.PRIMARY, "hc-p", checks["hc-p"].base_url),
            FailoverRecord("us-west-2", FailoverRole.SECONDARY, "hc-s", checks["hc-s"].base_url),
        )
        edge = Edge(FixedRecords(Snapshot(records, checks)), refresh_seconds=0.2, proxy_timeout=1.0)

        async def run() -> None:
            await edge.start()
            try:
                await asyncio.sleep(1.2)
            finally:
                await edge.stop()

        asyncio.run(run())
    finally:
        hanging.stop()
        healthy.stop()
    primary = edge.states["hc-p"]
    assert primary.status is HealthStatus.UNHEALTHY, primary
    # Probes kept starting on schedule although each one hung until its timeout.
    assert primary.consecutive_failures >= 4 and primary.last_error == "no answer within 0.2s", primary
    assert edge.states["hc-s"].status is HealthStatus.HEALTHY
    assert edge.answer.region == "us-west-2", edge.answer


@dataclass
class Sandbox:
    route53: Any
    zone_id: str
    checks: dict[str, str]
    upstreams: dict[str, Upstream]
    moto: ThreadedMotoServer
    edge_url: str
    edge_log: Path

    def set_roles(self, primary: str, secondary: str) -> None:
        def change(region: str, role: str) -> dict[str, Any]:
            record = {
                "Name": f"{RECORD}.",
                "Type": "A",
                "SetIdentifier": region,
                "Failover": role,
                "TTL": 1,
                "HealthCheckId": self.checks[region],
                "ResourceRecords": [{"Value": "127.0.0.1"}],
            }
            return {"Action": "UPSERT", "ResourceRecordSet": record}

        batch = {"Changes": [change(primary, "PRIMARY"), change(secondary, "SECONDARY")]}
        self.route53.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch=batch)

    def resolve(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.edge_url}/resolve", timeout=2.0).json())


def _wait_for(
    what: str, predicate: Callable[[], bool], timeout: float, sandbox: Sandbox | None = None
) -> float:
    """Seconds until `predicate` held; fails with the edge's state and log if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    detail = ""
    if sandbox is not None:
        detail = f"\n/resolve: {sandbox.resolve()}\nedge log:\n{sandbox.edge_log.read_text()[-3000:]}"
    pytest.fail(f"timed out after {timeout}s waiting for {what}{detail}")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    upstreams = {region: Upstream(region) for region in ("us-east-1", "us-west-2")}
    edge: subprocess.Popen[bytes] | None = None
    log_path = tmp_path_factory.mktemp("edge") / "edge.log"
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        route53 = boto3.client(
            "route53",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        zone_id = route53.create_hosted_zone(Name="mldr.test.", CallerReference="edge-test")["HostedZone"][
            "Id"
        ]
        checks = {}
        for region, upstream in upstreams.items():
            upstream.start()
            check = route53.create_health_check(
                CallerReference=region,
                HealthCheckConfig={
                    "IPAddress": "127.0.0.1",
                    "Port": upstream.port,
                    "Type": "HTTP",
                    "ResourcePath": "/healthz",
                    # botocore's floor; the tag below sets the real (sub-second) interval.
                    "RequestInterval": 10,
                    "FailureThreshold": THRESHOLD,
                },
            )
            check_id = check["HealthCheck"]["Id"]
            route53.change_tags_for_resource(
                ResourceType="healthcheck",
                ResourceId=check_id,
                AddTags=[{"Key": PROBE_INTERVAL_TAG, "Value": str(INTERVAL)}],
            )
            checks[region] = check_id

        edge_port = _free_port()
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")])
        )
        args = ["--port", str(edge_port), "--route53-endpoint", endpoint, "--zone-id", zone_id]
        args += ["--record-name", RECORD, "--refresh-seconds", str(REFRESH)]
        args += ["--proxy-timeout", str(PROXY_TIMEOUT)]
        with log_path.open("wb") as log_file:
            edge = subprocess.Popen(
                [sys.executable, "-m", "mldr.sandbox.edge", *args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
            )
        box = Sandbox(route53, zone_id, checks, upstreams, moto, f"http://127.0.0.1:{edge_port}", log_path)
        box.set_roles("us-east-1", "us-west-2")
        _wait_for("the edge to answer the primary", lambda: box.resolve()["answer"] == "us-east-1", 15, box)
        yield box
    finally:
        if edge is not None:
            edge.terminate()
            try:
                edge.wait(timeout=10)
            except subprocess.TimeoutExpired:
                edge.kill()
                edge.wait()
        for upstream in upstreams.values():
            upstream.stop()
        moto.stop()


def _served_by(sandbox: Sandbox) -> str:
    response = httpx.get(f"{sandbox.edge_url}/predict?x=1", timeout=5.0)
    assert response.status_code == 200, response.text
    assert response.json()["region"] == response.headers[SERVED_BY_HEADER]
    return str(response.headers[SERVED_BY_HEADER])


def test_edge_fails_over_and_back_like_route53(sandbox: Sandbox) -> None:
    doc = sandbox.resolve()
    assert {(r["region"], r["failover"]) for r in doc["records"]} == {
        ("us-east-1", "PRIMARY"),
        ("us-west-2", "SECONDARY"),
    }
    assert doc["checks"]["us-east-1"]["interval_seconds"] == INTERVAL
    assert doc["refresh_error"] is None
    _wait_for(
        "both checks to be healthy",
        lambda: all(c["healthy"] for c in sandbox.resolve()["checks"].values()),
        5,
    )

    # Requests are proxied as sent (method, path, query, body, headers) to the primary.
    response = httpx.post(f"{sandbox.edge_url}/predict?model=v1", content=b'{"x": 1}', timeout=5.0)
    assert response.status_code == 200
    assert response.headers[SERVED_BY_HEADER] == "us-east-1"
    assert response.headers["X-Upstream"] == "us-east-1"
    assert response.json() == {
        "region": "us-east-1",
        "method": "POST",
        "path": "/predict?model=v1",
        "body": '{"x": 1}',
    }

    # Primary fails its health check: after threshold x interval the answer moves.
    sandbox.upstreams["us-east-1"].healthy = False
    budget = INTERVAL * THRESHOLD + 2.0
    _wait_for(
        "failover to the secondary", lambda: sandbox.resolve()["answer"] == "us-west-2", budget, sandbox
    )
    primary = sandbox.resolve()["checks"]["us-east-1"]
    assert primary["status"] == "unhealthy" and primary["last_error"] == "HTTP 503"
    assert primary["last_change_at"] <= time.time()
    assert _served_by(sandbox) == "us-west-2"

    # Primary recovers: traffic goes back.
    sandbox.upstreams["us-east-1"].healthy = True
    _wait_for("failback to the primary", lambda: sandbox.resolve()["answer"] == "us-east-1", budget, sandbox)
    assert _served_by(sandbox) == "us-east-1"

    # An UPSERT swapping roles changes the answer within a refresh (plus the API round trip).
    sandbox.set_roles("us-west-2", "us-east-1")
    _wait_for(
        "the swapped primary", lambda: sandbox.resolve()["answer"] == "us-west-2", REFRESH + 2.0, sandbox
    )
    assert _served_by(sandbox) == "us-west-2"
    sandbox.set_roles("us-east-1", "us-west-2")
    _wait_for(
        "the original primary", lambda: sandbox.resolve()["answer"] == "us-east-1", REFRESH + 2.0, sandbox
    )

    log = sandbox.edge_log.read_text()
    assert "healthy -> unhealthy" in log and "answer for api.mldr.test: us-east-1 -> us-west-2" in log


def test_hanging_upstream_yields_504_within_the_proxy_timeout(sandbox: Sandbox) -> None:
    started = time.monotonic()
    response = httpx.get(f"{sandbox.edge_url}/hang", timeout=10.0)
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["region"] == "us-east-1" and "error" in response.json()
    assert PROXY_TIMEOUT - 0.1 <= elapsed < PROXY_TIMEOUT + 1.0


def test_unreachable_route53_keeps_last_records_and_reports_the_error(sandbox: Sandbox) -> None:
    # Runs last in this module: it stops the moto server the fixture started.
    sandbox.moto.stop()
    _wait_for("a refresh error", lambda: sandbox.resolve()["refresh_error"] is not None, 5, sandbox)
    doc = sandbox.resolve()
    assert doc["answer"] == "us-east-1" and len(doc["records"]) == 2, doc
    assert "Error" in doc["refresh_error"] or "Timeout" in doc["refresh_error"], doc["refresh_error"]
    assert _served_by(sandbox) == "us-east-1"
