"""pulumi-policy glue: stack resources -> `rules.Resource`, one mandatory stack policy per rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from infra.policy.rules import RULES, UNKNOWN, Resource, Rule

PACK_NAME = "mldr-dr"


def plain(value: Any) -> Any:
    """Copy props out of pulumi-policy's proxies; values unknown during preview become UNKNOWN."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError:
                out[key] = UNKNOWN
        return out
    if isinstance(value, Sequence):
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def to_resources(args: StackValidationArgs) -> list[Resource]:
    return [
        Resource(
            type=r.resource_type,
            urn=r.urn,
            props=plain(r.props),
            property_dependencies={
                k: [d.urn for d in deps] for k, deps in (r.property_dependencies or {}).items()
            },
        )
        for r in args.resources
    ]


def stack_policy(name: str, description: str, rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for violation in rule(to_resources(args)):
            report_violation(violation.message, violation.urn)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def policies() -> list[Policy]:
    return [stack_policy(name, description, rule) for name, (description, rule) in RULES.items()]
