"""Clients as the sandbox's admin, for what a test sets up or inspects outside the runbooks
(paging queues, CloudWatch listings, undoing a test's own writes): the runbooks' clients carry
the DR operator's keys, and the sandbox enforces that role's policy."""

from __future__ import annotations

from typing import Any

import boto3

from mldr.sandbox.iam import ADMIN_KEYS
from mldr.sandbox.manager import SandboxState


def admin_client(state: SandboxState, service: str, region: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=ADMIN_KEYS[0], aws_secret_access_key=ADMIN_KEYS[1], region_name=region
    )
    return session.client(service, endpoint_url=state.moto[region])  # type: ignore[call-overload]
