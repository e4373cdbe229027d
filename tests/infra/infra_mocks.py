"""The program under Pulumi mocks lives in `infra.under_mocks` (the sandbox reads it too)."""

from __future__ import annotations

from infra.under_mocks import (
    ACCOUNT,
    ALB_ZONE,
    HOSTED_ZONE_ID,
    Declared,
    Deployment,
    deploy,
    run_program,
    start_mocks,
)

__all__ = [
    "ACCOUNT",
    "ALB_ZONE",
    "HOSTED_ZONE_ID",
    "Declared",
    "Deployment",
    "deploy",
    "run_program",
    "start_mocks",
]
