"""What the approver reads (Markdown, never a raw dict) and what an answer means (issue 16 item 3).

The end-to-end path, through Airflow's REST API, is tests/e2e/test_approval_rest.py; these cover
every shape of preflight and answer without a scheduler."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from mldr.airflow.approval_text import approval_body, decision

PLAN = ["preflight: check", "approval: record who approved", "fence: take the DR lease"]
FAILOVER = {
    "source": "us-east-1",
    "target": "us-west-2",
    "mode": "unplanned",
    "token_before": 4,
    "target_health": "us-west-2: healthy",
    "source_reachable": False,
    "data_at_risk": {
        "measured": True,
        "objects": 3,
        "bytes": 3 * 1024 * 1024,
        "oldest_age_seconds": 42.0,
        "failed": 1,
        "first_keys": [],
        "full_list": {"uris": ["s3://ops-east/at-risk.json", "s3://ops-west/at-risk.json"]},
    },
    "baseline": {"region": "us-east-1", "predictions": [0, 1]},
    "forced": True,
    "problems": ["source unreachable"],
    "plan": PLAN,
}
FAILBACK = {
    "active": "us-west-2",
    "target": "us-east-1",
    "token_before": 5,
    "changed_since_epoch": 1_796_000_000.0,
    "baseline": {"region": "us-west-2"},
    "plan": PLAN,
}
RESTORE = {
    "region": "us-east-1",
    "bucket": "features-east",
    "at": "2026-12-03T10:15:00Z",
    "keys_read": 10,
    "to_revert": 2,
    "to_delete": 1,
    "unchanged": 7,
    "bytes": 2048,
    "first": [{"action": "revert", "key": "f/1.parquet", "bytes": 1024}],
    "summary": "2 to revert, 1 to delete",
    "token_before": 5,
}


def test_a_failover_reads_as_markdown_with_everything_an_approver_weighs() -> None:
    body = approval_body("failover", FAILOVER, window_seconds=900, approvers=("alice", "bob"))
    assert body.startswith("### Failover us-east-1 → us-west-2 (unplanned)")
    for line in (
        "| Source | us-east-1 (**not reachable**) |",
        "| Target health | us-west-2: healthy |",
        "| Data at risk | 3 object(s), 3.0 MiB, oldest 42 s behind, 1 failed to replicate",
        "`s3://ops-east/at-risk.json` and `s3://ops-west/at-risk.json`",
        "**Preflight failed and was overridden by force**: source unreachable",
        "1. preflight: check",
        "3. fence: take the DR lease",
        "Only alice, bob may answer; without an answer within 900 s the run ends.",
    ):
        assert line in body, (line, body)
    assert "{'" not in body and "'source'" not in body, "never a raw dict"


def test_a_failback_and_a_restore_read_as_markdown_too() -> None:
    body = approval_body("failback", FAILBACK)
    assert body.startswith("### Failback us-west-2 → us-east-1 (planned)")
    since = datetime.fromtimestamp(1_796_000_000.0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"| Data to resync | every object changed in us-west-2 since {since} |" in body
    assert "2. approval: record who approved" in body
    body = approval_body("restore", RESTORE)
    assert body.startswith("### Restore of `features-east` to 2026-12-03T10:15:00Z")
    assert "| To revert | 2 key(s), 2.0 KiB to copy |" in body
    assert "| To delete | 1 key(s) created after that time |" in body
    assert "- revert `f/1.parquet` (1.0 KiB)" in body
    assert "{'" not in body


def test_a_second_attempt_says_why_it_asks_again() -> None:
    assert "Asked again" not in approval_body("failover", FAILOVER)
    assert "**Asked again (attempt 2)**" in approval_body("failover", FAILOVER, attempt=2)
    assert approval_body("failover", None).startswith("Preflight did not return a summary")


ANSWER: dict[str, Any] = {
    "chosen_options": ["Approve"],
    "params_input": {},
    "responded_by_user": {"id": "7", "name": "bob"},
}


@pytest.mark.parametrize(
    ("response", "approved", "event", "who", "message"),
    [
        (ANSWER, True, "approval-granted", "bob (7)", "failover approved by bob (7)"),
        (
            {**ANSWER, "chosen_options": ["Reject"]},
            False,
            "approval-rejected",
            "bob (7)",
            "failover rejected by bob (7); nothing was changed",
        ),
        (
            {"timed_out": True, "window_seconds": 60, "chosen_options": []},
            False,
            "approval-timed-out",
            None,
            "failover not approved: nobody answered within the response window (60 s); nothing was changed",
        ),
        (None, False, "approval-missing", None, "failover not approved: no answer reached the run"),
    ],
)
def test_an_answer_means_approved_rejected_or_timed_out(
    response: Any, approved: bool, event: str, who: str | None, message: str
) -> None:
    answer = decision("failover", response)
    got = (answer.approved, answer.event, answer.responder, answer.message)
    assert got == (approved, event, who, message)


def _operator() -> Any:
    from mldr.airflow.approval_task import AwaitApproval

    return AwaitApproval(task_id="await_approval", kind="failover", preflight_task_id="preflight")


def test_a_timeout_slice_parks_again_until_the_window_ends_then_is_an_answer() -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    timeout = {"error": "no response", "error_type": "timeout"}
    operator = _operator()
    with pytest.raises(TaskAwaitingInput) as parked:
        operator.execute_complete({}, timeout, deadline=time.time() + 600, window=600)
    assert parked.value.method_name == "execute_complete"
    assert parked.value.kwargs is not None and parked.value.kwargs["window"] == 600
    assert parked.value.timeout is not None and parked.value.timeout.total_seconds() <= 20
    ended = operator.execute_complete({}, timeout, deadline=time.time() - 1, window=600)
    assert ended == {"timed_out": True, "window_seconds": 600, "chosen_options": []}


def test_a_reject_is_returned_as_the_answer_not_a_skip() -> None:
    """ApprovalOperator skips the tasks downstream on Reject: the approval step would never run
    and the operation would stay `running`. Here the answer is returned for it to close."""
    answer = {**ANSWER, "chosen_options": ["Reject"], "responded_at": datetime.now(UTC)}
    returned = _operator().execute_complete({}, answer)
    assert returned["chosen_options"] == ["Reject"]
    assert decision("failover", returned).event == "approval-rejected"
