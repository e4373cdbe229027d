"""What an approver reads, and what their answer means: pure functions over the preflight's XCom.

No Airflow import: the DAG's await_approval task (`approval_task.AwaitApproval`) renders these,
the approval step reads `decision`, and unit tests check every shape without a scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

APPROVE, REJECT = "Approve", "Reject"


def approval_subject(kind: str) -> str:
    """The approver's subject line, a template over params every run of that DAG has (a template
    reading a param the DAG does not declare fails the task: the failback has no target_region)."""
    if kind == "failover":
        return "Approve failover to {{ params.get('target_region') }}?"
    if kind == "restore":
        return "Approve restore of {{ params.get('dataset') }} to {{ params.get('to') }}?"
    return f"Approve {kind} to the primary region?"


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "unknown size"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def _risk(risk: Any) -> str:
    if not isinstance(risk, dict):
        return "not measured"
    if not risk.get("measured", True):
        return f"**unknown**: {risk.get('reason', 'the replication status could not be read')}"
    text = f"{risk.get('objects', '?')} object(s), {_size(risk.get('bytes'))}"
    if risk.get("objects"):
        text += f", oldest {float(risk.get('oldest_age_seconds') or 0):.0f} s behind"
        if risk.get("failed"):
            text += f", {risk['failed']} failed to replicate"
    uris = (risk.get("full_list") or {}).get("uris") or []
    if uris:
        text += f" (every version listed in {' and '.join(f'`{u}`' for u in uris)})"
    return text


def _plan(plan: Any) -> list[str]:
    steps = [str(s) for s in plan or ()]
    return ["", "**The plan** (nothing has changed yet; every step after approval changes state):", ""] + [
        f"{i}. {s}" for i, s in enumerate(steps, 1)
    ]


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def _failover(pre: dict[str, Any]) -> list[str]:
    mode = str(pre.get("mode"))
    how = (
        "planned: writes to the source are blocked, replication drained first (RPO 0)"
        if mode == "planned"
        else "unplanned: the source is impaired; what it has not replicated stays behind"
    )
    reachable = "reachable" if pre.get("source_reachable") else "**not reachable**"
    rows = [
        ("Source", f"{pre.get('source')} ({reachable})"),
        ("Target", f"{pre.get('target')}"),
        ("Mode", how),
        ("Target health", str(pre.get("target_health"))),
        ("Data at risk", _risk(pre.get("data_at_risk"))),
        ("Fencing token", f"{pre.get('token_before')} (the fence takes the next one)"),
    ]
    lines = [f"### Failover {pre.get('source')} → {pre.get('target')} ({mode})", "", *_table(rows)]
    if pre.get("forced"):
        problems = "; ".join(pre.get("problems") or ()) or "none listed"
        lines += ["", f"**Preflight failed and was overridden by force**: {problems}"]
    return lines + _plan(pre.get("plan"))


def _failback(pre: dict[str, Any]) -> list[str]:
    since = pre.get("changed_since_epoch")
    since_text = (
        datetime.fromtimestamp(float(since), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(since, int | float)
        else "unknown"
    )
    rows = [
        ("Source (active now)", str(pre.get("active"))),
        ("Target (the primary)", f"{pre.get('target')}"),
        ("Mode", "planned: resync, writes frozen during the switch, replication drained (RPO 0)"),
        ("Target health", "healthy (checked by preflight; re-checked before the fence)"),
        ("Data to resync", f"every object changed in {pre.get('active')} since {since_text}"),
        ("Fencing token", f"{pre.get('token_before')} (the fence takes the next one)"),
    ]
    lines = [f"### Failback {pre.get('active')} → {pre.get('target')} (planned)", "", *_table(rows)]
    return lines + _plan(pre.get("plan"))


def _restore(pre: dict[str, Any]) -> list[str]:
    rows = [
        ("Region", f"{pre.get('region')} (the active region)"),
        ("Bucket", f"`{pre.get('bucket')}`"),
        ("Restore to", str(pre.get("at"))),
        ("Keys read", str(pre.get("keys_read"))),
        ("To revert", f"{pre.get('to_revert')} key(s), {_size(pre.get('bytes'))} to copy"),
        ("To delete", f"{pre.get('to_delete')} key(s) created after that time"),
        ("Unchanged", f"{pre.get('unchanged')} key(s)"),
    ]
    lines = [f"### Restore of `{pre.get('bucket')}` to {pre.get('at')}", "", *_table(rows)]
    first = [c for c in pre.get("first") or () if isinstance(c, dict)]
    if first:
        lines += ["", f"**First {len(first)} change(s)**:", ""]
        lines += [f"- {c.get('action')} `{c.get('key')}` ({_size(c.get('bytes'))})" for c in first]
    return lines


def approval_body(
    kind: str,
    preflight: dict[str, Any] | None,
    *,
    window_seconds: int | None = None,
    approvers: tuple[str, ...] = (),
    attempt: int = 1,
) -> str:
    """The preflight as Markdown (the HITL body the Airflow UI renders): never a raw dict."""
    if not isinstance(preflight, dict) or not preflight:
        lines = ["Preflight did not return a summary: **Reject**, and look at the preflight task's log."]
    elif kind == "restore" or "to_revert" in preflight:
        lines = _restore(preflight)
    elif kind == "failback" or "active" in preflight:
        lines = _failback(preflight)
    else:
        lines = _failover(preflight)
    lines += ["", "---", ""]
    if attempt > 1:
        lines += [
            f"**Asked again (attempt {attempt})**: an earlier attempt of this task ended without an "
            "answer reaching the run (on Airflow 3.3 an answer given within about a second of the "
            "prompt can be lost). Nothing was changed; answer again.",
            "",
        ]
    who = f"Only {', '.join(approvers)} may answer" if approvers else "Anyone who may run this DAG may answer"
    within = f"; without an answer within {window_seconds} s the run ends" if window_seconds else ""
    lines.append(f"**{APPROVE}** runs the plan; **{REJECT}** ends the run, nothing changed. {who}{within}.")
    return "\n".join(lines)


@dataclass(frozen=True)
class Decision:
    """What the await_approval task's answer means for the operation."""

    approved: bool
    #: the audit event: approval-granted, approval-rejected, approval-timed-out, approval-missing
    event: str
    responder: str | None
    message: str


def responder(response: dict[str, Any]) -> str | None:
    user = response.get("responded_by_user")
    if not isinstance(user, dict):
        return None
    name, user_id = user.get("name"), user.get("id")
    if name and user_id and str(name) != str(user_id):
        return f"{name} ({user_id})"
    return str(name or user_id) if (name or user_id) else None


def decision(kind: str, response: Any) -> Decision:
    """The await_approval task's XCom, read: approved by whom, rejected by whom, or timed out."""
    if not isinstance(response, dict):
        return Decision(False, "approval-missing", None, f"{kind} not approved: no answer reached the run")
    if response.get("timed_out"):
        window = response.get("window_seconds")
        return Decision(
            False,
            "approval-timed-out",
            None,
            f"{kind} not approved: nobody answered within the response window"
            + (f" ({window} s)" if window else "")
            + "; nothing was changed",
        )
    who = responder(response)
    chosen = response.get("chosen_options") or ()
    if APPROVE in chosen:
        return Decision(True, "approval-granted", who, f"{kind} approved by {who or 'an unnamed user'}")
    return Decision(
        False, "approval-rejected", who, f"{kind} rejected by {who or 'an unnamed user'}; nothing was changed"
    )
