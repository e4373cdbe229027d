"""What a drill measures, as pure functions over what the client observed.

Nothing here reads a configured value to produce a measurement: downtime comes from the
requests the load generator sent, data loss from the canaries it wrote and what the target
region holds afterwards, detection from the health checker's own transition time. The
objectives are only used for the verdict.

Definitions (the report and `runbooks/dr-drill.md` repeat them):

- **detection**: fault injection -> the source region's health check turning unhealthy.
- **RTO (client-observed downtime)**: send time of the first request that failed after the
  fault -> send time of the first request answered successfully *by the target region*.
  0 when no request failed; None when the target never answered (not recovered).
- **RPO (data lost)**: canaries the source acknowledged (before it stopped taking writes) that
  are missing, or differ by SHA-256, in the target after failover; in seconds, from the
  moment the source stopped taking writes back to the acknowledgement of the oldest lost one.
- **lost after failback**: acknowledged canaries (any region, any time) missing or different in
  either region after failback. Must be 0.
- **parity**: every region's endpoint answers the golden set with the same model version and
  identical predictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestSample:
    """One inference request as the client saw it."""

    sent_at: float  # epoch seconds
    done_at: float
    ok: bool
    status: int | None  # None: no HTTP response (timeout, connection refused)
    region: str | None  # the region that served it (body `region` or X-Mldr-Served-By)
    error: str | None = None

    @property
    def latency(self) -> float:
        return max(0.0, self.done_at - self.sent_at)


@dataclass(frozen=True)
class CanaryWrite:
    """One canary object the load generator tried to write."""

    seq: int
    key: str
    region: str | None  # where it was written (the active region at the time)
    sent_at: float
    acked_at: float | None  # None: not acknowledged (refused, timed out)
    sha256: str
    error: str | None = None

    @property
    def acked(self) -> bool:
        return self.acked_at is not None


@dataclass(frozen=True)
class Downtime:
    first_failure_at: float | None
    recovered_at: float | None  # send time of the first success served by the target
    seconds: float | None  # None: the target never answered
    failed_requests: int  # failed requests from the fault to the end of the drill

    @property
    def recovered(self) -> bool:
        return self.seconds is not None


def client_downtime(samples: Iterable[RequestSample], *, fault_at: float, target: str) -> Downtime:
    """Client-observed downtime after a fault (see the module docstring).

    A request sent just before the fault that failed because of it (still in flight when the
    region stopped) counts: its user saw the outage too.
    """
    ordered = sorted(samples, key=lambda s: s.sent_at)
    affected = [s for s in ordered if s.done_at >= fault_at]
    failed = [s for s in affected if not s.ok]
    if not failed:
        return Downtime(None, None, 0.0, 0)
    first = failed[0]
    recovered = next(
        (s for s in affected if s.ok and s.region == target and s.sent_at >= first.sent_at), None
    )
    if recovered is None:
        return Downtime(first.sent_at, None, None, len(failed))
    return Downtime(first.sent_at, recovered.sent_at, recovered.sent_at - first.sent_at, len(failed))


@dataclass(frozen=True)
class DataLoss:
    considered: int  # canaries the source acknowledged before it stopped taking writes
    lost: tuple[CanaryWrite, ...]
    rpo_seconds: float

    @property
    def lost_objects(self) -> int:
        return len(self.lost)


def data_loss(
    canaries: Iterable[CanaryWrite],
    *,
    source: str,
    present_in_target: Mapping[str, str],
    writes_stopped_at: float,
) -> DataLoss:
    """Canaries acknowledged by `source` up to `writes_stopped_at` that the target lacks.

    `present_in_target` maps key -> SHA-256 of what the target holds; a canary whose bytes
    differ is as lost as a missing one.
    """
    considered = [
        c
        for c in canaries
        if c.acked_at is not None and c.region == source and c.acked_at <= writes_stopped_at
    ]
    lost = tuple(
        sorted(
            (c for c in considered if present_in_target.get(c.key) != c.sha256),
            key=lambda c: c.acked_at or 0.0,
        )
    )
    oldest = lost[0].acked_at if lost else None
    rpo = max(0.0, writes_stopped_at - oldest) if oldest is not None else 0.0
    return DataLoss(considered=len(considered), lost=lost, rpo_seconds=rpo)


@dataclass(frozen=True)
class FailbackLoss:
    checked: int  # acknowledged canaries
    missing: Mapping[str, tuple[str, ...]]  # region -> keys missing or different there

    @property
    def lost(self) -> int:
        """Canaries missing or different in at least one region."""
        return len({key for keys in self.missing.values() for key in keys})


def lost_after_failback(
    canaries: Iterable[CanaryWrite], present_by_region: Mapping[str, Mapping[str, str]]
) -> FailbackLoss:
    acked = [c for c in canaries if c.acked]
    missing = {
        region: tuple(c.key for c in acked if present.get(c.key) != c.sha256)
        for region, present in present_by_region.items()
    }
    return FailbackLoss(checked=len(acked), missing=missing)


@dataclass(frozen=True)
class Parity:
    ok: bool
    model_versions: Mapping[str, str | None]
    problems: tuple[str, ...] = ()


def prediction_parity(answers: Mapping[str, Mapping[str, Any]]) -> Parity:
    """Parity between golden-set answers keyed by where they came from (region or phase).

    Each answer is `{"model_version", "predictions"}` or `{"error"}`; any error, a different
    version or a different prediction breaks parity.
    """
    problems: list[str] = []
    versions: dict[str, str | None] = {}
    reference: tuple[str, Mapping[str, Any]] | None = None
    for name, answer in answers.items():
        versions[name] = answer.get("model_version")
        if answer.get("error") or answer.get("predictions") is None:
            problems.append(f"{name}: no answer ({answer.get('error', 'no predictions')})")
            continue
        if reference is None:
            reference = (name, answer)
            continue
        ref_name, ref = reference
        if answer.get("model_version") != ref.get("model_version"):
            problems.append(
                f"{name} serves model {answer.get('model_version')}, {ref_name} {ref.get('model_version')}"
            )
        if list(answer["predictions"]) != list(ref["predictions"]):
            differing = [
                i
                for i, (a, b) in enumerate(zip(answer["predictions"], ref["predictions"], strict=False))
                if a != b
            ]
            if len(answer["predictions"]) != len(ref["predictions"]):
                differing.append(-1)
            problems.append(f"{name} predicts differently from {ref_name} on rows {differing}")
    if not answers:
        problems.append("no golden-set answers collected")
    return Parity(ok=not problems, model_versions=versions, problems=tuple(problems))


@dataclass(frozen=True)
class Objectives:
    rto_seconds: float
    rpo_seconds: float


@dataclass(frozen=True)
class Verdict:
    passed: bool
    failures: tuple[str, ...]  # each failed criterion, measured vs objective
    met: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def reason(self) -> str:
        if self.passed:
            return "all objectives met: " + "; ".join(self.met)
        return "; ".join(self.failures)


def _s(value: float) -> str:
    return f"{value:.1f} s"


def verdict(
    *,
    rto_seconds: float | None,
    rpo_seconds: float | None,
    parity: bool | None,
    lost_after_failback: int | None,
    objectives: Objectives,
    failed_back: bool = True,
    missing_by_region: Mapping[str, int] | None = None,
) -> Verdict:
    """Pass iff RTO <= objective, RPO <= objective, parity, and nothing lost after failback."""
    failures: list[str] = []
    met: list[str] = []
    if rto_seconds is None:
        failures.append(
            "RTO not met: clients never got an answer from the target region "
            f"(objective {_s(objectives.rto_seconds)})"
        )
    elif rto_seconds > objectives.rto_seconds:
        failures.append(f"RTO {_s(rto_seconds)} > objective {_s(objectives.rto_seconds)}")
    else:
        met.append(f"RTO {_s(rto_seconds)} <= {_s(objectives.rto_seconds)}")
    if rpo_seconds is None:
        failures.append("RPO not measured: the target region's canaries could not be read")
    elif rpo_seconds > objectives.rpo_seconds:
        failures.append(f"RPO {_s(rpo_seconds)} > objective {_s(objectives.rpo_seconds)}")
    else:
        met.append(f"RPO {_s(rpo_seconds)} <= {_s(objectives.rpo_seconds)}")
    if parity is None:
        failures.append("prediction parity not measured")
    elif not parity:
        failures.append("prediction parity broken: the regions answer the golden set differently")
    else:
        met.append("prediction parity")
    if failed_back:
        if lost_after_failback is None:
            failures.append("data after failback not checked")
        elif lost_after_failback > 0:
            where = ", ".join(f"{n} missing in {r}" for r, n in (missing_by_region or {}).items() if n)
            failures.append(
                f"{lost_after_failback} object(s) lost after failback (must be 0)"
                + (f": {where}" if where else "")
            )
        else:
            met.append("0 lost after failback")
    return Verdict(passed=not failures, failures=tuple(failures), met=tuple(met))


def detection_seconds(fault_at: float | None, detected_at: float | None) -> float | None:
    if fault_at is None or detected_at is None:
        return None
    return max(0.0, detected_at - fault_at)


def write_outage_seconds(canaries: Sequence[CanaryWrite], *, fault_at: float) -> float | None:
    """From the first canary write refused after the fault to the next acknowledged one."""
    ordered = sorted(canaries, key=lambda c: c.sent_at)
    first_failed = next((c for c in ordered if c.sent_at >= fault_at and not c.acked), None)
    if first_failed is None:
        return 0.0
    back = next((c for c in ordered if c.sent_at > first_failed.sent_at and c.acked), None)
    return None if back is None else back.sent_at - first_failed.sent_at
