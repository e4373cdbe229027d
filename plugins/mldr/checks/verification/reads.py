"""The object reads a verification makes beyond the listings: an object's stored checksum
(HEAD), and its bytes hashed (GET) when no stored checksum settles it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from mldr.checks.verification.compare import StoredChecksum
from mldr.cloud.objects import ObjectStore

CHUNK = 1024 * 1024


def hash_chunks(chunks: Iterable[bytes]) -> tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of a stream of chunks (no whole copy in memory)."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    for chunk in chunks:
        sha.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


class ObjectReads:
    """HEAD and hashed GET of one object, on the run's object stores (one per region)."""

    stores: dict[str, ObjectStore]

    def _head(self, region: str, bucket: str, key: str) -> StoredChecksum:
        return StoredChecksum.from_head(self.stores[region].head(bucket, key, checksum=True))

    def _download_hash(self, region: str, bucket: str, key: str) -> tuple[str, str, int]:
        return hash_chunks(self.stores[region].stream(bucket, key, chunk_size=CHUNK))
