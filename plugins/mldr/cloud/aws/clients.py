"""The one place that makes AWS (botocore) clients, per region (`aws_call`, re-exported here,
translates their failures into mldr errors: `mldr.cloud.aws.errors`).

Clients come from the Airflow AWS connection the topology names for a region (through the
Amazon provider's `AwsBaseHook`, so `endpoint_url`, credentials and role assumption come
from the connection), or, for the CLI without Airflow, from the environment: the same
`AIRFLOW_CONN_<ID>` variables the sandbox writes, else the SDK's default credential chain.

Every client has explicit connect/read timeouts and botocore's standard retry mode: a region
that stops answering surfaces as `RegionUnreachable` within seconds, never as a hang.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.config import Config

from mldr.cloud.aws.errors import aws_call, error_code
from mldr.cloud.calls import (
    DEFAULT_TIMEOUTS,
    PROBE_TIMEOUTS,
    TRANSFER_TIMEOUTS,
    SilentRegions,
    Timeouts,
)
from mldr.topology import Topology

__all__ = [
    "DEFAULT_TIMEOUTS",
    "PROBE_TIMEOUTS",
    "TRANSFER_TIMEOUTS",
    "ClientFactory",
    "SilentRegions",
    "Timeouts",
    "aws_call",
    "botocore_config",
    "error_code",
]


def botocore_config(timeouts: Timeouts) -> Config:
    return Config(
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        retries={"mode": "standard", "total_max_attempts": timeouts.max_attempts},
        # Path-style works with any endpoint (sandbox IPs included) and with real S3.
        s3={"addressing_style": "path"},
        max_pool_connections=32,
    )


@dataclass(frozen=True)
class ConnectionSettings:
    """What a client needs from an Airflow AWS connection."""

    endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    region_name: str | None = None


def parse_airflow_connection(value: str) -> ConnectionSettings:
    """Parse an `AIRFLOW_CONN_*` value, in Airflow's JSON or URI form, into settings."""
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return ConnectionSettings(
            endpoint_url=extra.get("endpoint_url"),
            aws_access_key_id=data.get("login") or extra.get("aws_access_key_id"),
            aws_secret_access_key=data.get("password") or extra.get("aws_secret_access_key"),
            region_name=extra.get("region_name"),
        )
    parts = urlsplit(value)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return ConnectionSettings(
        endpoint_url=query.get("endpoint_url"),
        aws_access_key_id=unquote(parts.username) if parts.username else None,
        aws_secret_access_key=unquote(parts.password) if parts.password else None,
        region_name=query.get("region_name"),
    )


def connection_env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


class ClientSource(Protocol):
    def make(self, *, service: str, region: str, conn_id: str, config: Config) -> Any: ...


class EnvironmentSource:
    """Clients from `AIRFLOW_CONN_<ID>` in the environment, else the default credential chain.

    One botocore session for every connection, each client given its connection's keys: a
    session caches the service models and endpoint data it has loaded, so every client after the
    first of a service costs ~0.01 s of CPU instead of ~0.15 s (a session per connection reloads
    them for each region). botocore, not boto3: mldr uses no boto3 extra (resources, managed
    transfers), and the CLI starts ~0.1 s sooner without importing it. `ClientFactory` calls
    `make` under its lock; sessions are not safe to use from several threads at once.
    """

    def __init__(self) -> None:
        self._session: botocore.session.Session | None = None

    def make(self, *, service: str, region: str, conn_id: str, config: Config) -> Any:
        raw = os.environ.get(connection_env_var(conn_id))
        settings = parse_airflow_connection(raw) if raw else ConnectionSettings()
        if self._session is None:
            self._session = botocore.session.Session()
        own_keys = bool(settings.aws_access_key_id and settings.aws_secret_access_key)
        return self._session.create_client(
            service,
            region_name=region,
            endpoint_url=settings.endpoint_url,
            config=config,
            # None: the session's default chain (environment, profile, instance role)
            aws_access_key_id=settings.aws_access_key_id if own_keys else None,
            aws_secret_access_key=settings.aws_secret_access_key if own_keys else None,
        )


class AirflowHookSource:
    """Clients through the Amazon provider's hook: the connection's endpoint, keys, role.

    One hook per connection and one session per (connection, region): each new hook fetches
    the connection again (in a task, a round trip to the API server) and each new session
    reloads the service models - together ~0.5 s per client, several seconds per runbook task.
    """

    def __init__(self) -> None:
        self._hooks: dict[str, Any] = {}
        self._sessions: dict[tuple[str, str], Any] = {}

    def make(self, *, service: str, region: str, conn_id: str, config: Config) -> Any:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = self._hooks.get(conn_id)
        if hook is None:
            hook = self._hooks[conn_id] = AwsBaseHook(aws_conn_id=conn_id, region_name=region)
        session = self._sessions.get((conn_id, region))
        if session is None:
            session = self._sessions[(conn_id, region)] = hook.get_session(region_name=region)
        # The connection's own botocore settings (extra `config_kwargs`), then our timeouts.
        return session.client(  # type: ignore[call-overload,no-any-return]
            service,
            region_name=region,
            endpoint_url=hook.conn_config.get_service_endpoint_url(service_name=service),
            config=hook.config.merge(config),
            verify=hook.verify,
        )


def _running_in_airflow_task() -> bool:
    return bool(os.environ.get("AIRFLOW_CTX_DAG_ID")) or os.environ.get("MLDR_CLIENTS") == "airflow"


class ClientFactory:
    """Makes and caches clients for the topology's regions and global services."""

    def __init__(
        self,
        topology: Topology,
        *,
        source: ClientSource | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
    ) -> None:
        self.topology = topology
        self.source: ClientSource = source or (
            AirflowHookSource() if _running_in_airflow_task() else EnvironmentSource()
        )
        self.timeouts = timeouts
        self._cache: dict[tuple[str, str, str, Timeouts], Any] = {}
        self._lock = threading.Lock()
        self.silent = SilentRegions()

    @classmethod
    def from_environment(cls, topology: Topology, **kwargs: Any) -> ClientFactory:
        return cls(topology, source=EnvironmentSource(), **kwargs)

    @classmethod
    def from_airflow(cls, topology: Topology, **kwargs: Any) -> ClientFactory:
        return cls(topology, source=AirflowHookSource(), **kwargs)

    def _client(self, service: str, region: str, conn_id: str, timeouts: Timeouts | None) -> Any:
        limits = timeouts or self.timeouts
        key = (service, region, conn_id, limits)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self.source.make(
                    service=service, region=region, conn_id=conn_id, config=botocore_config(limits)
                )
            return self._cache[key]

    def client(self, service: str, region: str, *, timeouts: Timeouts | None = None) -> Any:
        """A client for `service` in one of the topology's data regions."""
        conn_id = self.topology.region(region).connection_id
        return self._client(service, region, conn_id, timeouts)

    def route53(self, *, timeouts: Timeouts | None = None) -> Any:
        """Route 53 is global; it has its own connection (the sandbox's global server)."""
        return self._client("route53", "us-east-1", self.topology.inference.route53_connection_id, timeouts)

    def route53_data_plane(self, *, timeouts: Timeouts | None = None) -> Any:
        """The Route 53 client for `TestDNSAnswer` and `GetHealthCheckStatus`. In the sandbox its
        edge answers them (moto has neither): the same calls, at the edge's URL, which checks
        no signature."""
        sandbox = self.topology.sandbox
        if sandbox is None:
            return self.route53(timeouts=timeouts)
        limits = timeouts or self.timeouts
        key = ("route53-data-plane", "us-east-1", sandbox.edge_url, limits)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = botocore.session.Session().create_client(
                    "route53",
                    region_name="us-east-1",
                    endpoint_url=sandbox.edge_url,
                    config=botocore_config(limits),
                    aws_access_key_id="sandbox",
                    aws_secret_access_key="sandbox",
                )
            return self._cache[key]

    def control_clients(
        self, *, timeouts: Timeouts | None = None, regions: Sequence[str] | None = None
    ) -> Iterator[tuple[str, Any]]:
        """DynamoDB clients for each replica of the control-state table (only and in the order of
        `regions` when given), each made when reached: a read the first replica answers makes
        one client, not one per replica (~50 ms each on every command's path)."""
        replicas = {r.region: r for r in self.topology.control_state.replicas}
        for region in replicas if regions is None else regions:
            r = replicas[region]
            yield r.region, self._client("dynamodb", r.region, r.connection_id, timeouts)
