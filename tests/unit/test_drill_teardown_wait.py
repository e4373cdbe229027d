"""The DAG's teardown waits for its own drill's lock to stop heartbeating (its task was killed on
another worker) instead of refusing to revert; it never waits for another drill's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mldr.cloud.control import RecordValue, now_iso
from mldr.runbooks.drill.lock import HOST_ENV, DrillLock, wait_for_drill_to_stop


def held_by(drill_id: str) -> dict[str, RecordValue]:
    now = now_iso()
    return DrillLock(
        drill_id=drill_id,
        purpose="drill",
        host="worker-2",
        pid=4242,
        started_at=now,
        heartbeat_at=now,
        held=True,
        version=7,
    ).record()


class Reads:
    """A control store whose lock record is each of `records` in turn (the last one repeats)."""

    def __init__(self, *records: dict[str, RecordValue]) -> None:
        self._records: Iterator[dict[str, RecordValue]] = iter(records)
        self._last = records[-1]
        self.reads = 0

    def get_record(self, key: str) -> dict[str, Any]:
        self.reads += 1
        self._last = next(self._records, self._last)
        return dict(self._last)


@pytest.fixture(autouse=True)
def on_worker_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOST_ENV, "worker-1")


def test_the_teardown_waits_until_its_own_drill_lets_go() -> None:
    released = {**held_by("drill-run-1"), "held": 0}
    store = Reads(held_by("drill-run-1"), held_by("drill-run-1"), released)
    assert wait_for_drill_to_stop(store, drill_id="drill-run-1", poll=0) is None  # type: ignore[arg-type]
    assert store.reads == 3, "it read the lock until it was no longer live"


def test_it_gives_up_after_its_bound_and_names_the_lock_still_live() -> None:
    store = Reads(held_by("drill-run-1"))
    still = wait_for_drill_to_stop(store, drill_id="drill-run-1", timeout=0, poll=0)  # type: ignore[arg-type]
    assert still is not None and still.drill_id == "drill-run-1" and still.host == "worker-2"


def test_it_never_waits_for_another_drill() -> None:
    store = Reads(held_by("drill-run-2"))
    assert wait_for_drill_to_stop(store, drill_id="drill-run-1", poll=0) is None  # type: ignore[arg-type]
    assert store.reads == 1, "recover() then refuses, naming the other drill"
