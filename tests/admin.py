"""Clients as the sandbox's admin, for what a test sets up or inspects outside the runbooks
(paging queues, CloudWatch listings, undoing a test's own writes): the runbooks' clients carry
the DR operator's keys, and the sandbox enforces that role's policy."""

from __future__ import annotations

import os
from typing import Any

import boto3

from mldr.cloud.aws.clients import (
    ClientFactory,
    ConnectionSettings,
    connection_env_var,
    parse_airflow_connection,
)
from mldr.sandbox.iam import ADMIN_KEYS
from mldr.sandbox.manager import SandboxState
from mldr.topology import Topology


def admin_client(state: SandboxState, service: str, region: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=ADMIN_KEYS[0], aws_secret_access_key=ADMIN_KEYS[1], region_name=region
    )
    return session.client(service, endpoint_url=state.moto[region])  # type: ignore[call-overload]


class _AdminSource:
    """The sandbox's endpoints from the connections in the environment, with the admin's keys."""

    def make(self, *, service: str, region: str, conn_id: str, config: Any) -> Any:
        raw = os.environ.get(connection_env_var(conn_id))
        settings = parse_airflow_connection(raw) if raw else ConnectionSettings()
        session = boto3.session.Session(
            aws_access_key_id=ADMIN_KEYS[0], aws_secret_access_key=ADMIN_KEYS[1], region_name=region
        )
        return session.client(service, endpoint_url=settings.endpoint_url, config=config)  # type: ignore[call-overload]


def admin_factory(topology: Topology) -> ClientFactory:
    """A client factory like the runbooks', as the admin: for resources outside the DR role's
    policy that a test creates (a bucket under Object Lock, ...)."""
    return ClientFactory(topology, source=_AdminSource())
