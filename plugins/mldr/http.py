"""One shared HTTP client per process.

Creating an httpx client loads the CA bundle (about 0.15 s here), so a fresh client per
request costs more than the request; every plain HTTP call in mldr goes through this one.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

_client: httpx.Client | None = None
_lock = threading.Lock()


def client() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0))
        return _client


def get(url: str, *, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    return client().get(url, timeout=timeout, **kwargs)


def post(url: str, *, timeout: float = 5.0, **kwargs: Any) -> httpx.Response:
    return client().post(url, timeout=timeout, **kwargs)
