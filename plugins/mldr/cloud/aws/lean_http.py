"""A pooled HTTP client for the hot paths of the CLI: S3 listings and the replication status.

urllib3, not httpx: botocore already imports urllib3, while importing httpx (which imports
click, rich and pygments when they are installed, as Airflow installs them) costs ~0.15 s -
about 2% of a 10,000-object `mldr verify`, paid before the first request.
"""

from __future__ import annotations

import os
import threading

import urllib3
from urllib3.exceptions import HTTPError as TransportError

__all__ = ["TransportError", "pool", "timeout"]

_lock = threading.Lock()
_pool: urllib3.PoolManager | None = None


def pool() -> urllib3.PoolManager:
    """One pool per process, 64 connections per host; honours AWS_CA_BUNDLE as botocore does.

    Requests go out with `retries=False` (the callers retry where it is safe) so that a
    refused or timed-out connection surfaces as one `TransportError` at once.
    """
    global _pool
    with _lock:
        if _pool is None:
            _pool = urllib3.PoolManager(
                maxsize=64, block=False, retries=False, ca_certs=os.environ.get("AWS_CA_BUNDLE") or None
            )
        return _pool


def timeout(*, connect: float, read: float) -> urllib3.Timeout:
    return urllib3.Timeout(connect=connect, read=read)
