"""A dataset's state as checksums, what differs from a recorded one, and what was written when.

A recovery point of a prefix is its current keys with the SHA-256 of each one's bytes. The
logical-corruption drill records one before its bad run, detects the damage in the standby
against it, and proves the restore exact with it (no key missing, none extra, every checksum
equal); `written_between` lists the versions a restore to a time gives up. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from mldr.cloud.objects import ObjectStore, streamed_sha256
from mldr.errors import NotFound

#: key -> SHA-256 (hex) of its current bytes
State = dict[str, str]


def current_state(store: ObjectStore, bucket: str, prefix: str) -> State:
    """Every current key under `prefix` with the SHA-256 of its bytes (read: small prefixes)."""
    state: State = {}
    for listed in store.list_objects(bucket, prefix=prefix):
        try:
            state[listed.key] = streamed_sha256(store, bucket, listed.key).hex()
        except NotFound:
            continue  # deleted between the listing and the read: not current any more
    return state


@dataclass(frozen=True, kw_only=True)
class StateDiff:
    """How a state differs from the expected one, key by key (sorted)."""

    missing: tuple[str, ...]  # expected, absent
    extra: tuple[str, ...]  # present, not expected
    different: tuple[str, ...]  # present in both, other bytes

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.different)

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.different)

    def summary(self) -> str:
        if self.exact:
            return "identical: every key present with the recorded SHA-256, none extra"
        parts = [
            f"{len(keys)} {what} (first: {keys[0]})"
            for what, keys in (
                ("missing", self.missing),
                ("extra", self.extra),
                ("different", self.different),
            )
            if keys
        ]
        return ", ".join(parts)


def compare_state(expected: State, actual: State) -> StateDiff:
    return StateDiff(
        missing=tuple(sorted(set(expected) - set(actual))),
        extra=tuple(sorted(set(actual) - set(expected))),
        different=tuple(sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])),
    )


@dataclass(frozen=True, kw_only=True)
class WrittenVersion:
    """A version or delete marker, as the history lists it."""

    key: str
    version_id: str
    modified: float
    size: int
    deleted: bool


def written_between(
    store: ObjectStore, bucket: str, prefix: str, *, after: float, before: float
) -> tuple[WrittenVersion, ...]:
    """The versions and delete markers under `prefix` written after `after` and before `before`
    (epoch seconds, both excluded), oldest first: what a restore to `after` gives up when
    `before` is when the damage began."""
    found = [
        WrittenVersion(
            key=v.key, version_id=v.version_id, modified=v.modified, size=v.size, deleted=v.deleted
        )
        for v in store.versions(bucket, prefix=prefix)
        if after < v.modified < before
    ]
    return tuple(sorted(found, key=lambda w: (w.modified, w.key)))
