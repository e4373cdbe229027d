"""Failback resync: who wins for each key, and which keys need the other side's history."""

from __future__ import annotations

from mldr.actions.resync import Current, plan

A, S = "us-west-2", "us-east-1"  # active (failed over to), standby (the old primary)
SINCE = 1000.0  # the failover started here


def obj(key: str, at: float, etag: str = "e1", size: int = 10) -> Current:
    return Current(key, None, at, etag, size, False)


def marker(key: str, at: float) -> Current:
    return Current(key, "dm", at, "", 0, True)


def run(
    active: list[Current], standby: list[Current], history: dict[tuple[str, str], Current | None]
) -> tuple[dict[str, tuple[str, str, str]], list[tuple[str, str]]]:
    asked: list[tuple[str, str]] = []

    def lookup(region: str, key: str) -> Current | None:
        asked.append((region, key))
        return history.get((region, key))

    transfers, looked_up = plan(
        {c.key: c for c in active},
        {c.key: c for c in standby},
        active_region=A,
        standby_region=S,
        since=SINCE,
        history=lookup,
    )
    assert looked_up == len(asked)
    return {t.key: (t.action, t.source_region, t.target_region) for t in transfers}, sorted(asked)


def test_written_in_the_active_region_after_the_failover_goes_back_without_a_lookup() -> None:
    transfers, asked = run([obj("new", 1500)], [], {})
    assert transfers == {"new": ("copy", A, S)}
    assert asked == []  # the listing alone decides: the active side changed it after the failover


def test_identical_keys_are_left_alone_and_differing_ones_go_to_the_newer_side() -> None:
    active = [obj("same", 500), obj("edited-after", 1500, etag="e2"), obj("old-edit", 500, etag="e3")]
    standby = [obj("same", 500), obj("edited-after", 400), obj("old-edit", 900, etag="e4")]
    transfers, asked = run(active, standby, {})
    assert transfers == {"edited-after": ("copy", A, S), "old-edit": ("copy", S, A)}
    assert asked == []


def test_data_the_standby_had_that_never_crossed_is_kept() -> None:
    # written in the old primary just before the outage, never replicated: no history in the
    # active region, so it is copied there - nothing written anywhere is lost
    transfers, asked = run([], [obj("at-risk", 990)], {(A, "at-risk"): None})
    assert transfers == {"at-risk": ("copy", S, A)}
    assert asked == [(A, "at-risk")]


def test_a_delete_in_the_active_region_after_the_failover_is_carried_back() -> None:
    transfers, asked = run([], [obj("gone", 500)], {(A, "gone"): marker("gone", 1200)})
    assert transfers == {"gone": ("delete", A, S)}
    assert asked == [(A, "gone")]


def test_a_delete_in_the_active_region_before_the_failover_does_not_win() -> None:
    # the standby (then primary) still has the key: its state wins, the key is restored
    transfers, _ = run([], [obj("back", 500)], {(A, "back"): marker("back", 800)})
    assert transfers == {"back": ("copy", S, A)}


def test_a_delete_in_the_standby_is_carried_to_an_older_copy_in_the_active_region() -> None:
    transfers, asked = run([obj("stale", 500)], [], {(S, "stale"): marker("stale", 900)})
    assert transfers == {"stale": ("delete", S, A)}
    assert asked == [(S, "stale")]
