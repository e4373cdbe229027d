"""The approver's subject renders for every runbook DAG from the params that DAG declares.

Airflow renders it with strict undefined: dr_failback's subject once read `params.target_region`,
which that DAG does not have, and every approval failed with UndefinedError (fails on that code)."""

from __future__ import annotations

import jinja2
import pytest

from mldr.airflow.approval_text import approval_subject as _approval_subject

STRICT = jinja2.Environment(undefined=jinja2.StrictUndefined)


@pytest.mark.parametrize(
    ("kind", "params", "subject"),
    [
        ("failover", {"target_region": "us-west-2", "reason": "x" * 10}, "Approve failover to us-west-2?"),
        ("failback", {"reason": "x" * 10}, "Approve failback to the primary region?"),
        ("restore", {"dataset": "features", "to": "-2h"}, "Approve restore of features to -2h?"),
    ],
)
def test_the_subject_renders_from_the_dags_own_params(
    kind: str, params: dict[str, str], subject: str
) -> None:
    assert STRICT.from_string(_approval_subject(kind)).render(params=params) == subject
