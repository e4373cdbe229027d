"""An object store in one region: versioned buckets of keys (S3, Azure Blob, Cloud Storage)."""

from __future__ import annotations

from typing import Protocol


class ObjectStore(Protocol):
    """An object store in one region: versioned buckets of keys (S3, Azure Blob, Cloud Storage)."""
