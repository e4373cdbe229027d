"""The sandbox edge: Route 53's data plane, which moto does not have.

moto stores hosted zones, failover records and health checks, but its checks are always
healthy and it answers no DNS. This process reads the failover records for one name and
their health checks from the Route 53 API, probes each check's target at its interval and
failure threshold the way Route 53's checkers do, picks the answer with Route 53's failover
rules, and proxies HTTP to the answered region. A client pointed at the edge therefore sees
what a real client of the DNS name would: failover after detection, not before.

    python -m mldr.sandbox.edge --port 8600 --route53-endpoint http://127.0.0.1:5000 \\
        --zone-id Z123 --record-name api.mldr.test [--refresh-seconds 0.5]

`GET /resolve` shows the answer, the records, each check's state and the last refresh; Route 53's
`TestDNSAnswer` and `GetHealthCheckStatus` are answered under their API paths (a Route 53 client
pointed at the edge calls them as in AWS); every other request is proxied, with
`X-Mldr-Served-By: <region>` on the response. Each health transition and each answer change
is logged on one line with `at=<epoch seconds>`; drills measure detection time from those lines.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any, Protocol

import boto3
import httpx
import uvicorn
from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, botocore_config
from mldr.cloud.aws.route53 import resolve_addresses
from mldr.errors import MldrError, SandboxError
from mldr.sandbox.failover_routing import (
    Answer,
    CheckState,
    FailoverRecord,
    FailoverRole,
    HealthStatus,
    choose_answer,
    observe,
)
from mldr.sandbox.listen import HOST, add_listen_arguments, port_of, server_socket
from mldr.sandbox.route53_answers import health_check_status_xml, not_found_xml, test_dns_answer_xml

log = logging.getLogger("mldr.sandbox.edge")

#: botocore rejects RequestInterval < 10, so the sandbox keeps its real (sub-second) interval here.
PROBE_INTERVAL_TAG = "mldr:probe-interval-seconds"
#: Route 53 gives up on a health check request after a few seconds; so do we, or sooner.
MAX_PROBE_TIMEOUT = 2.0
DEFAULT_PROXY_TIMEOUT = 5.0
SERVED_BY_HEADER = "X-Mldr-Served-By"

_HTTP_TYPES = {"HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH"}
_PROBED_TYPES = _HTTP_TYPES | {"TCP"}
# Route 53 looks for SearchString in the first 5,120 bytes of the body.
_STR_MATCH_WINDOW = 5120
# Per-hop headers (RFC 9110 7.6.1) plus those httpx recomputes for the new hop.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# httpx hands us the decoded body, so the upstream's encoding header would lie to the client.
_DROP_FROM_RESPONSE = _HOP_BY_HOP | {"content-encoding"}


@dataclass(frozen=True)
class HealthCheckSpec:
    """A health check as the edge probes it, from `get_health_check` and its tags."""

    id: str
    type: str
    host: str
    port: int
    resource_path: str
    interval_seconds: float
    failure_threshold: int
    search_string: str | None = None
    inverted: bool = False
    disabled: bool = False

    @property
    def scheme(self) -> str:
        return "https" if self.type.startswith("HTTPS") else "http"

    @property
    def base_url(self) -> str:
        """Where traffic for a record with this check goes: the check's own endpoint."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        if self.type == "TCP":
            return f"tcp://{self.host}:{self.port}"
        path = self.resource_path if self.resource_path.startswith("/") else f"/{self.resource_path}"
        return f"{self.base_url}{path}"

    @property
    def probe_timeout(self) -> float:
        # Never longer than the interval, so at most one probe per check is in flight at a time.
        return min(self.interval_seconds, MAX_PROBE_TIMEOUT)


def health_check_spec(check_id: str, config: Mapping[str, Any], tags: Mapping[str, str]) -> HealthCheckSpec:
    """Build the spec from a `HealthCheckConfig` and the check's tags; the interval tag wins."""
    check_type = str(config.get("Type", "HTTP"))
    host = config.get("IPAddress") or config.get("FullyQualifiedDomainName")
    if not host and check_type in _PROBED_TYPES:
        raise SandboxError(f"health check {check_id}: no IPAddress or FullyQualifiedDomainName to probe")
    interval = float(config.get("RequestInterval", 30))
    raw = tags.get(PROBE_INTERVAL_TAG)
    if raw is not None:
        try:
            interval = float(raw)
        except ValueError:
            interval = 0.0
        if interval <= 0:
            raise SandboxError(
                f"health check {check_id}: tag {PROBE_INTERVAL_TAG}={raw!r} is not a positive number "
                "of seconds; fix the tag (change_tags_for_resource)"
            )
    default_port = 443 if check_type.startswith("HTTPS") else 80
    return HealthCheckSpec(
        id=check_id,
        type=check_type,
        host=str(host or ""),
        port=int(config.get("Port") or default_port),
        resource_path=str(config.get("ResourcePath") or "/"),
        interval_seconds=interval,
        failure_threshold=int(config.get("FailureThreshold", 3)),
        search_string=config.get("SearchString"),
        inverted=bool(config.get("Inverted", False)),
        disabled=bool(config.get("Disabled", False)),
    )


def _normalise_name(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass(frozen=True)
class Snapshot:
    """One consistent read of the records and their health checks."""

    records: tuple[FailoverRecord, ...]
    checks: Mapping[str, HealthCheckSpec]


class SnapshotSource(Protocol):
    """Where the edge reads records and checks from: `Route53Reader`, or a fixed set in tests."""

    endpoint_url: str
    record_name: str

    def read(self) -> Snapshot: ...


class Route53Reader:
    """Reads failover records and health checks for one name through the Route 53 API."""

    def __init__(self, *, endpoint_url: str, zone_id: str, record_name: str) -> None:
        self.endpoint_url = endpoint_url
        self.zone_id = zone_id
        self.record_name = record_name
        # The sandbox's moto takes any key; real credentials in the environment win if present.
        use_env = bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))
        session = boto3.session.Session(
            aws_access_key_id=None if use_env else "testing",
            aws_secret_access_key=None if use_env else "testing",
            region_name="us-east-1",
        )
        # One short attempt: a dead Route 53 must show up as a refresh error, not stall refreshes.
        self._client = session.client(
            "route53",
            region_name="us-east-1",
            endpoint_url=endpoint_url,
            config=botocore_config(PROBE_TIMEOUTS),
        )

    def _failover_record_sets(self) -> list[Mapping[str, Any]]:
        wanted = _normalise_name(self.record_name)
        found: list[Mapping[str, Any]] = []
        start: dict[str, str] = {"StartRecordName": self.record_name}
        while True:
            page = self._client.list_resource_record_sets(HostedZoneId=self.zone_id, **start)  # type: ignore[arg-type]
            for rrset in page["ResourceRecordSets"]:
                if _normalise_name(rrset["Name"]) != wanted:
                    if found:
                        return found  # one name's record sets are contiguous; the rest are other names
                    continue
                if rrset.get("Failover") in (FailoverRole.PRIMARY, FailoverRole.SECONDARY):
                    found.append(rrset)
            if not page.get("IsTruncated"):
                return found
            start = {"StartRecordName": page["NextRecordName"]}
            if page.get("NextRecordType"):
                start["StartRecordType"] = page["NextRecordType"]
            if page.get("NextRecordIdentifier"):
                start["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def read(self) -> Snapshot:
        """Raises botocore errors or `SandboxError`; the caller keeps its last snapshot then."""
        raw_records = self._failover_record_sets()
        checks: dict[str, HealthCheckSpec] = {}
        for check_id in sorted({r["HealthCheckId"] for r in raw_records if r.get("HealthCheckId")}):
            config = self._client.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
            tag_set = self._client.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check_id)
            tags = {t["Key"]: t["Value"] for t in tag_set["ResourceTagSet"].get("Tags", [])}
            checks[check_id] = health_check_spec(check_id, config, tags)

        records = []
        for rrset in sorted(raw_records, key=lambda r: (r["Failover"], r.get("SetIdentifier", ""))):
            check_id = rrset.get("HealthCheckId")
            values = [v["Value"] for v in rrset.get("ResourceRecords", [])]
            if check_id:
                target: str | None = checks[check_id].base_url
            else:
                target = f"http://{values[0]}" if values else None
            records.append(
                FailoverRecord(
                    region=rrset.get("SetIdentifier", rrset["Failover"].lower()),
                    role=FailoverRole(rrset["Failover"]),
                    health_check_id=check_id,
                    target=target,
                    addresses=_record_addresses(rrset, values),
                )
            )
        return Snapshot(records=tuple(records), checks=checks)


def _record_addresses(rrset: Mapping[str, Any], values: list[str]) -> tuple[str, ...]:
    """What Route 53 answers for the record: an alias target's addresses (resolved, as Route 53
    does - never the target's hostname), else the record's own values."""
    alias = rrset.get("AliasTarget")
    if not alias:
        return tuple(values)
    try:
        return tuple(sorted(resolve_addresses(str(alias["DNSName"]).rstrip("."))))
    except MldrError:
        return ()  # answered as no data, as Route 53 does for a target that does not resolve


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Edge:
    """The running state: last known records, per-check state, the current answer."""

    def __init__(self, reader: SnapshotSource, *, refresh_seconds: float, proxy_timeout: float) -> None:
        self.reader = reader
        self.refresh_seconds = refresh_seconds
        self.proxy_timeout = proxy_timeout
        self.records: tuple[FailoverRecord, ...] = ()
        self.specs: dict[str, HealthCheckSpec] = {}
        self.states: dict[str, CheckState] = {}
        self.answer = Answer(None, "records not read yet")
        self.refreshed_at: float | None = None
        self.refresh_error: str | None = None
        self._probers: dict[str, asyncio.Task[None]] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._probe_client: httpx.AsyncClient | None = None
        self._proxy_client: httpx.AsyncClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        # A fresh connection per probe, as Route 53's checkers make: a pooled socket would hide
        # a listener that no longer accepts. No certificate checks, as Route 53 does not check.
        self._probe_client = httpx.AsyncClient(
            limits=httpx.Limits(max_keepalive_connections=0), verify=False, follow_redirects=False
        )
        self._proxy_client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.proxy_timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            follow_redirects=False,
        )
        self._refresher = asyncio.create_task(self._refresh_loop(), name="route53-refresh")

    def _clients(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        if self._probe_client is None or self._proxy_client is None:
            raise SandboxError("edge not started: call Edge.start() (the app's lifespan does) first")
        return self._probe_client, self._proxy_client

    async def stop(self) -> None:
        tasks = [t for t in [self._refresher, *self._probers.values()] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._probers.clear()
        for client in (self._probe_client, self._proxy_client):
            if client is not None:
                await client.aclose()

    # -- Route 53 control plane -------------------------------------------------------------

    async def refresh_once(self) -> None:
        try:
            snapshot = await asyncio.to_thread(self.reader.read)
        except (ClientError, BotoCoreError, SandboxError) as exc:
            error = _describe(exc)
            if error != self.refresh_error:
                log.warning(
                    "Route 53 refresh of %s from %s failed: %s; keeping the last %d known records "
                    "and probing on. Is the global moto server up? at=%.3f",
                    self.reader.record_name,
                    self.reader.endpoint_url,
                    error,
                    len(self.records),
                    time.time(),
                )
            self.refresh_error = error
            return
        if self.refresh_error is not None:
            log.info("Route 53 refresh of %s works again at=%.3f", self.reader.record_name, time.time())
        self.refresh_error = None
        self.refreshed_at = time.time()
        self._apply(snapshot)

    async def _refresh_loop(self) -> None:
        while True:
            await self.refresh_once()
            await asyncio.sleep(self.refresh_seconds)

    def _apply(self, snapshot: Snapshot) -> None:
        if snapshot.records != self.records:
            listing = ", ".join(f"{r.region}={r.role}" for r in snapshot.records) or "none"
            log.info("failover records for %s: %s at=%.3f", self.reader.record_name, listing, time.time())
            self.records = snapshot.records
        for check_id in list(self.specs):
            if check_id not in snapshot.checks:
                self._stop_prober(check_id)
                del self.specs[check_id]
                self.states.pop(check_id, None)
        for check_id, spec in snapshot.checks.items():
            if self.specs.get(check_id) == spec:
                continue
            # Changed interval, threshold or target: restart its schedule, keep what it observed.
            self._stop_prober(check_id)
            self.specs[check_id] = spec
            state = self.states.setdefault(check_id, CheckState())
            if spec.disabled:
                # Route 53 treats a disabled check as healthy and stops probing it.
                self._set_state(
                    spec,
                    replace(state, status=HealthStatus.HEALTHY, last_change_at=time.time()),
                    "because the check is disabled",
                )
            elif spec.type not in _PROBED_TYPES:
                self.states[check_id] = replace(
                    state, last_error=f"type {spec.type} is not probed by the sandbox edge"
                )
            else:
                self._probers[check_id] = asyncio.create_task(
                    self._probe_loop(spec), name=f"probe-{check_id}"
                )
        self._reevaluate()

    def _stop_prober(self, check_id: str) -> None:
        task = self._probers.pop(check_id, None)
        if task is not None:
            task.cancel()

    # -- health checking ---------------------------------------------------------------------

    async def _probe_loop(self, spec: HealthCheckSpec) -> None:
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Task[None]] = set()
        next_at = loop.time()
        try:
            while True:
                # Each probe is its own task, so a target that hangs cannot delay the next probe.
                task = asyncio.create_task(self._probe_once(spec))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                next_at += spec.interval_seconds
                delay = next_at - loop.time()
                if delay < 0:  # the loop was starved; skip missed slots rather than burst
                    next_at, delay = loop.time(), 0.0
                await asyncio.sleep(delay)
        finally:
            for task in in_flight:
                task.cancel()

    async def _probe_once(self, spec: HealthCheckSpec) -> None:
        try:
            async with asyncio.timeout(spec.probe_timeout):
                ok, error = await self._probe(spec)
        except TimeoutError:
            ok, error = False, f"no answer within {spec.probe_timeout:g}s"
        if spec.inverted:
            # Route 53 reports an inverted check healthy exactly when its target is not.
            error = "inverted check: target answered healthy" if ok else None
            ok = not ok
        if self.specs.get(spec.id) != spec:
            return  # the check changed or went away while this probe ran
        state = self.states.get(spec.id, CheckState())
        self._set_state(
            spec, observe(state, ok=ok, threshold=spec.failure_threshold, at=time.time(), error=error)
        )

    async def _probe(self, spec: HealthCheckSpec) -> tuple[bool, str | None]:
        if spec.type == "TCP":
            try:
                _, writer = await asyncio.open_connection(spec.host, spec.port)
            except OSError as exc:
                return False, _describe(exc)
            writer.close()
            return True, None
        try:
            response = await self._clients()[0].get(spec.url, timeout=spec.probe_timeout)
        except httpx.HTTPError as exc:
            return False, _describe(exc)
        if not 200 <= response.status_code < 400:
            return False, f"HTTP {response.status_code}"
        if spec.search_string and spec.search_string not in response.text[:_STR_MATCH_WINDOW]:
            return False, f"body lacks {spec.search_string!r}"
        return True, None

    def _set_state(self, spec: HealthCheckSpec, new: CheckState, why: str | None = None) -> None:
        old = self.states.get(spec.id, CheckState())
        self.states[spec.id] = new
        if new.status is old.status:
            return
        regions = ",".join(r.region for r in self.records if r.health_check_id == spec.id) or "no record"
        if why is None:
            run = (
                new.consecutive_successes if new.status is HealthStatus.HEALTHY else new.consecutive_failures
            )
            kind = "successes" if new.status is HealthStatus.HEALTHY else "failures"
            why = f"after {run} consecutive {kind}" + (
                f", last error: {new.last_error}" if new.last_error else ""
            )
        log_at = log.warning if new.status is HealthStatus.UNHEALTHY else log.info
        log_at(
            "health check %s (%s, %s): %s -> %s %s at=%.3f",
            spec.id,
            regions,
            spec.url,
            old.status,
            new.status,
            why,
            new.last_change_at or time.time(),
        )
        self._reevaluate()

    # -- routing -------------------------------------------------------------------------------

    def _reevaluate(self) -> None:
        routable = {check_id: state.routable for check_id, state in self.states.items()}
        answer = choose_answer(self.records, routable)
        if answer.region != self.answer.region:
            # A move between regions is what the operator must notice; the first answer is not.
            log_at = log.warning if self.answer.region is not None else log.info
            log_at(
                "answer for %s: %s -> %s (%s) at=%.3f",
                self.reader.record_name,
                self.answer.region or "none",
                answer.region or "none",
                answer.reason,
                time.time(),
            )
        self.answer = answer

    def resolve_document(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        for record in self.records:
            if record.health_check_id is None:
                continue
            spec = self.specs.get(record.health_check_id)
            state = self.states.get(record.health_check_id, CheckState())
            checks[record.region] = {
                "health_check_id": record.health_check_id,
                "healthy": state.healthy,
                "status": str(state.status),
                "consecutive_failures": state.consecutive_failures,
                "consecutive_successes": state.consecutive_successes,
                "interval_seconds": spec.interval_seconds if spec else None,
                "failure_threshold": spec.failure_threshold if spec else None,
                "last_probe_at": state.last_probe_at,
                "last_change_at": state.last_change_at,
                "last_error": state.last_error,
            }
        return {
            "record_name": self.reader.record_name,
            "answer": self.answer.region,
            "reason": self.answer.reason,
            "records": [
                {
                    "region": r.region,
                    "failover": str(r.role),
                    "health_check_id": r.health_check_id,
                    "target": r.target,
                }
                for r in self.records
            ],
            "checks": checks,
            "refreshed_at": self.refreshed_at,
            "refresh_error": self.refresh_error,
        }

    # -- Route 53's data-plane API (what moto lacks) ---------------------------------------------

    def test_dns_answer(self, request: Request) -> Response:
        """`TestDNSAnswer` for the served name: the answered record's addresses, as Route 53
        answers an alias record (the target's addresses, not its hostname)."""
        name = request.query_params.get("recordname", "")
        kind = request.query_params.get("recordtype", "A")
        if _normalise_name(name) != _normalise_name(self.reader.record_name):
            return _xml(404, not_found_xml("NoSuchHostedZone", f"{name}: not served by the sandbox edge"))
        record = self.answer.record
        addresses = record.addresses if record is not None else ()
        return _xml(200, test_dns_answer_xml(record_name=name, record_type=kind, addresses=addresses))

    def health_check_status(self, request: Request) -> Response:
        """`GetHealthCheckStatus` from the edge's own probes, not moto's always-healthy checks."""
        check_id = request.path_params["check_id"]
        if check_id not in self.specs:
            return _xml(404, not_found_xml("NoSuchHealthCheck", f"health check {check_id} is not probed"))
        state = self.states.get(check_id, CheckState())
        xml = health_check_status_xml(
            healthy=state.healthy, error=state.last_error, checked_at=state.last_probe_at
        )
        return _xml(200, xml)

    # -- data plane ------------------------------------------------------------------------------

    async def proxy(self, request: Request) -> Response:
        record = self.answer.record
        if record is None or record.target is None:
            return JSONResponse(
                {"error": f"no failover record to answer for {self.reader.record_name}", "region": None},
                status_code=503,
            )
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        query = request.url.query
        url = f"{record.target}{path}" + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        body = await request.body()
        try:
            # httpx's timeout is per phase; this bounds the whole exchange for the client.
            async with asyncio.timeout(self.proxy_timeout):
                upstream = await self._clients()[1].request(
                    request.method, url, headers=headers, content=body
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            return self._upstream_failed(504, record, f"no answer within {self.proxy_timeout:g}s", exc)
        except httpx.TransportError as exc:
            return self._upstream_failed(502, record, _describe(exc), exc)
        response = Response(content=upstream.content, status_code=upstream.status_code)
        for key, value in upstream.headers.multi_items():
            if key.lower() not in _DROP_FROM_RESPONSE:
                response.headers.append(key, value)
        response.headers[SERVED_BY_HEADER] = record.region
        return response

    def _upstream_failed(self, status: int, record: FailoverRecord, error: str, exc: Exception) -> Response:
        log.debug("proxy to %s (%s) failed: %s", record.region, record.target, _describe(exc))
        return JSONResponse(
            {"error": f"upstream {record.target} failed: {error}", "region": record.region},
            status_code=status,
            headers={SERVED_BY_HEADER: record.region},
        )


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _xml(status: int, body: str) -> Response:
    return Response(content=body, status_code=status, media_type="text/xml")


def create_app(edge: Edge) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await edge.start()
        try:
            yield
        finally:
            await edge.stop()

    async def resolve(_: Request) -> Response:
        return JSONResponse(edge.resolve_document())

    # A non-GET /resolve only partially matches the first route, so Starlette proxies it.
    return Starlette(
        routes=[
            Route("/resolve", resolve, methods=["GET"]),
            # Route 53's API paths: a Route 53 client pointed at the edge gets these two answers.
            Route("/2013-04-01/testdnsanswer", edge.test_dns_answer, methods=["GET"]),
            Route("/2013-04-01/healthcheck/{check_id}/status", edge.health_check_status, methods=["GET"]),
            Route("/{path:path}", edge.proxy, methods=_ALL_METHODS),
        ],
        lifespan=lifespan,
    )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mldr.sandbox.edge", description=__doc__.split("\n")[0])
    add_listen_arguments(parser)
    parser.add_argument("--route53-endpoint", required=True, help="Route 53 API endpoint (the global moto)")
    parser.add_argument("--zone-id", required=True, help="hosted zone id holding the failover records")
    parser.add_argument("--record-name", required=True, help="DNS name whose failover records to serve")
    parser.add_argument("--refresh-seconds", type=float, default=0.5, help="how often to re-read Route 53")
    parser.add_argument(
        "--proxy-timeout",
        type=float,
        default=DEFAULT_PROXY_TIMEOUT,
        help="seconds before a proxied request fails with 504",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every probe and proxied request at INFO: too much noise to find the transitions in.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    reader = Route53Reader(
        endpoint_url=args.route53_endpoint, zone_id=args.zone_id, record_name=args.record_name
    )
    edge = Edge(reader, refresh_seconds=args.refresh_seconds, proxy_timeout=args.proxy_timeout)
    sock = server_socket(args)
    log.info(
        "edge for %s on http://%s:%d: Route 53 at %s, zone %s, refresh every %gs",
        args.record_name,
        HOST,
        port_of(sock),
        args.route53_endpoint,
        args.zone_id,
        args.refresh_seconds,
    )
    config = uvicorn.Config(create_app(edge), log_config=None, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
