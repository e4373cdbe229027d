"""Route 53's failover-routing and health-check rules, as pure functions the edge applies.

Kept free of I/O so the semantics the drills measure against (how many failed probes make a
region unhealthy, which record DNS answers when) are unit-tested on their own, and so the
edge process only has to feed probe results and records in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum


class HealthStatus(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class FailoverRole(StrEnum):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"


@dataclass(frozen=True)
class CheckState:
    """What one health check has observed so far. Timestamps are Unix epoch seconds."""

    status: HealthStatus = HealthStatus.UNKNOWN
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_probe_at: float | None = None
    last_change_at: float | None = None
    last_error: str | None = None

    @property
    def routable(self) -> bool:
        # Route 53 considers a new check healthy until it has evidence otherwise.
        return self.status is not HealthStatus.UNHEALTHY

    @property
    def healthy(self) -> bool | None:
        return None if self.status is HealthStatus.UNKNOWN else self.status is HealthStatus.HEALTHY


def observe(
    state: CheckState, *, ok: bool, threshold: int, at: float, error: str | None = None
) -> CheckState:
    """The state after one probe: status flips only after `threshold` consecutive contrary results.

    From `unknown`, whichever run reaches the threshold first decides; mixed results leave
    it unknown (still routable).
    """
    threshold = max(1, threshold)
    if ok:
        successes, failures = state.consecutive_successes + 1, 0
    else:
        successes, failures = 0, state.consecutive_failures + 1
    status = state.status
    if ok and successes >= threshold:
        status = HealthStatus.HEALTHY
    elif not ok and failures >= threshold:
        status = HealthStatus.UNHEALTHY
    return replace(
        state,
        status=status,
        consecutive_successes=successes,
        consecutive_failures=failures,
        last_probe_at=at,
        last_change_at=at if status is not state.status else state.last_change_at,
        # Keep the last error after recovery: it is what the operator wants to see next morning.
        last_error=state.last_error if ok else error,
    )


@dataclass(frozen=True)
class FailoverRecord:
    """One failover record set: `region` is its SetIdentifier; `target` where its traffic goes."""

    region: str
    role: FailoverRole
    health_check_id: str | None
    target: str | None
    #: What DNS answers for it: an alias record's target addresses, a plain record's values.
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    record: FailoverRecord | None
    reason: str

    @property
    def region(self) -> str | None:
        return self.record.region if self.record else None


def choose_answer(records: Sequence[FailoverRecord], routable: Mapping[str, bool]) -> Answer:
    """Route 53 failover routing: primary if healthy, else secondary if healthy, else primary.

    `routable` maps health check id to whether it currently counts as healthy; a record with
    no health check, or one not yet observed, counts as healthy. When every record is
    unhealthy Route 53 fails open and answers as if all were healthy, i.e. the primary.
    """
    primary = next((r for r in records if r.role is FailoverRole.PRIMARY), None)
    secondary = next((r for r in records if r.role is FailoverRole.SECONDARY), None)

    def ok(record: FailoverRecord) -> bool:
        return record.health_check_id is None or routable.get(record.health_check_id, True)

    if primary is None and secondary is None:
        return Answer(None, "no failover records")
    if primary is not None and ok(primary):
        return Answer(primary, f"primary {primary.region} healthy")
    if secondary is not None and ok(secondary):
        why = f"primary {primary.region} unhealthy" if primary else "no primary record"
        return Answer(secondary, f"{why}, secondary {secondary.region} healthy")
    fallback = primary or secondary
    return Answer(fallback, "all records unhealthy: answering as if all healthy (Route 53 fails open)")
