"""Point-in-time restore planning: times, prefixes and the order of a key's versions."""

from __future__ import annotations

import pytest

from mldr.actions.restore import apply_restore
from mldr.checks.point_in_time import (
    KeyChange,
    RestorePlan,
    _histories,
    _state_at,
    check_prefixes,
    iso,
    parse_restore_time,
)
from mldr.cloud.objects import ObjectHead, ObjectVersion
from mldr.errors import ConfigurationError


def test_restore_times_parse_or_are_refused_naming_what_is_wrong() -> None:
    assert parse_restore_time("-2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_restore_time("-30m", now=10_000.0) == 10_000.0 - 1800
    assert parse_restore_time("2026-12-03T10:15:00Z", now=2e9) == parse_restore_time(
        "2026-12-03T11:15:00+01:00", now=2e9
    )
    assert iso(parse_restore_time("2026-12-03T10:15:00.250Z", now=2e9)) == "2026-12-03T10:15:00.250Z"
    for text, problem in (
        ("2999-01-01T00:00:00Z", "in the future"),
        ("2026-12-03T10:00:00", "time zone"),
        ("-nanh", "relative time"),
        ("-infh", "relative time"),
        ("-0m", "relative time"),
        ("yesterday", "not a time"),
    ):
        with pytest.raises(ConfigurationError, match=problem):
            parse_restore_time(text, now=2e9)


def test_into_prefix_must_lie_beside_what_is_restored() -> None:
    check_prefixes("data/", "restored/data/")
    check_prefixes("data/", None)
    for prefix, into in (("data/", "data/restored/"), ("", "restored/"), ("data/x", "data/"), ("a/", "")):
        with pytest.raises(ConfigurationError):
            check_prefixes(prefix, into)


def _v(version: str, modified: float, *, latest: bool = False, deleted: bool = False) -> ObjectVersion:
    return ObjectVersion("k", version, modified, "" if deleted else "e" * 32, 3, latest, deleted)


def test_a_delete_marker_of_the_same_second_is_the_later_change() -> None:
    # the store lists versions, then delete markers: written and removed in one second (a temp file)
    listed = [_v("new", 20.0, latest=True), _v("put", 10.0), _v("marker", 10.0, deleted=True)]
    ((_, history),) = list(_histories(listed))
    assert [v.version_id for v in history] == ["new", "marker", "put"]
    assert _state_at(history, 15.0) is None  # at 15 the key had been removed
    assert _state_at(history, 25.0) is not None and _state_at(history, 25.0).version_id == "new"  # type: ignore[union-attr]
    assert _state_at(history, 5.0) is None  # not written yet


class _Store:
    """Copies that S3 answers with `copied_etag`; records what was written."""

    def __init__(self, copied_etag: str) -> None:
        self.copied_etag, self.copies, self.deleted = copied_etag, [], []  # type: ignore[var-annotated]

    def copy_version(self, bucket: str, key: str, version_id: str, *, to_key: str) -> ObjectHead:
        self.copies.append((key, version_id, to_key))
        return ObjectHead(key=to_key, size=-1, etag=self.copied_etag)

    def delete(self, bucket: str, key: str) -> None:
        self.deleted.append(key)

    def default_kms_key(self, bucket: str) -> bool:
        return False


class _Cloud:
    def __init__(self, store: _Store) -> None:
        self.store = store

    def objects(self, region: str, *, timeouts: object = None) -> _Store:
        return self.store


def _plan(*changes: KeyChange) -> RestorePlan:
    return RestorePlan(
        dataset="d", region="r", bucket="b", at=1.0, prefix="", into_prefix=None, keys_read=3, left=0,
        changes=changes,
    )  # fmt: skip


def _change(action: str, key: str, etag: str = "") -> KeyChange:
    return KeyChange(
        action=action,  # type: ignore[arg-type]
        key=key,
        target_key=key,
        version_id="v1" if action == "revert" else None,
        etag=etag,
        bytes=5,
        loses_version="v2",
        loses_modified=2.0,
    )


def test_a_copy_whose_bytes_differ_from_the_version_is_a_failure_not_a_restore() -> None:
    good, bad = "a" * 32, "b" * 32
    plan = _plan(_change("revert", "k1", good), _change("delete", "k2"))
    store = _Store(copied_etag=good)
    report = apply_restore(_Cloud(store), plan)  # type: ignore[arg-type]
    assert (report.reverted, report.deleted, report.failures) == (1, 1, [])
    assert store.copies == [("k1", "v1", "k1")] and store.deleted == ["k2"]
    report = apply_restore(_Cloud(_Store(copied_etag=bad)), _plan(_change("revert", "k1", good)))  # type: ignore[arg-type]
    assert (
        report.reverted == 0
        and len(report.failures) == 1
        and "is not that of version v1" in report.failures[0]
    )


def test_a_time_older_than_the_restore_window_is_refused() -> None:
    from mldr.checks.point_in_time import plan_restore
    from mldr.topology import load_topology_file

    topology = load_topology_file("tests/fixtures/topology.json")
    window = topology.dataset("model-artifacts").retention.noncurrent_days
    too_old = __import__("time").time() - (window + 1) * 86400
    with pytest.raises(ConfigurationError, match=f"restore window \\({window} days"):
        plan_restore(None, topology, dataset="model-artifacts", region="us-east-1", at=too_old)  # type: ignore[arg-type]


def test_a_dag_runs_relative_time_is_read_against_the_runs_start_in_every_task() -> None:
    from mldr.airflow.runbook_tasks import restore_params

    class _Control:
        def read_lease(self) -> object:
            return type("Lease", (), {"active_region": "us-west-2"})()

    cloud = type("Cloud", (), {"control": lambda self: _Control()})()
    conf = {"dataset": "features", "to": "-2h", "prefix": "", "into_prefix": "", "reason": "r" * 10}
    first = restore_params(cloud, conf, run_started=50_000.0)
    later = restore_params(cloud, conf, run_started=50_000.0)  # another task, minutes later
    assert first["restore"] == later["restore"] and first["restore"].at == 50_000.0 - 7200
    assert first["target_region"] == "us-west-2" and first["restore"].into_prefix is None
