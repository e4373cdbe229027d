"""The recovery point of a prefix as checksums: what differs from it, and what a restore gives up."""

from __future__ import annotations

from collections.abc import Iterator

from mldr.checks.dataset_state import compare_state, written_between
from mldr.cloud.objects import ObjectVersion


def test_compare_state_names_every_missing_extra_and_different_key() -> None:
    expected = {"a": "1", "b": "2", "c": "3"}
    diff = compare_state(expected, {"a": "1", "c": "X", "d": "4"})
    assert (diff.missing, diff.extra, diff.different) == (("b",), ("d",), ("c",))
    assert not diff.exact and diff.count == 3
    assert diff.summary() == "1 missing (first: b), 1 extra (first: d), 1 different (first: c)"
    same = compare_state(expected, dict(expected))
    assert same.exact and same.summary().startswith("identical")


class _History:
    def __init__(self, versions: list[ObjectVersion]) -> None:
        self._versions = versions

    def versions(self, bucket: str, *, prefix: str = "") -> Iterator[ObjectVersion]:
        return iter(v for v in self._versions if v.key.startswith(prefix))


def test_written_between_lists_versions_and_delete_markers_strictly_inside_the_window() -> None:
    def v(key: str, at: float, *, deleted: bool = False) -> ObjectVersion:
        return ObjectVersion(key, f"{key}@{at}", at, "", 0 if deleted else 5, False, deleted)

    store = _History(
        [
            v("p/a", 100.0),  # the recovery point's: at the chosen time, kept
            v("p/a", 101.0),  # a good edit after it: given up
            v("p/b", 102.0, deleted=True),  # a good delete after it: given up
            v("p/a", 103.0),  # the damage: not a write the restore gives up
            v("q/c", 101.5),  # another prefix
        ]
    )
    found = written_between(store, "bucket", "p/", after=100.0, before=103.0)  # type: ignore[arg-type]
    assert [(w.key, w.modified, w.deleted) for w in found] == [("p/a", 101.0, False), ("p/b", 102.0, True)]
