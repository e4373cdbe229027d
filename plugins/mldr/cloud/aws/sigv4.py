"""AWS Signature Version 4 for S3 requests without a body, as botocore's `S3SigV4Auth` signs them.

botocore signs by building an `AWSRequest`, copying its headers twice and deriving the signing
key (four HMACs) on every request: ~0.4 ms of CPU each, a fifth of a resync copy's client cost.
Here the canonical request is built straight from the URL we already encoded, and the signing
key is derived once per day and region. `tests/unit/test_sigv4.py` holds the output to
botocore's, header for header.

Only for requests without a body (LIST, HEAD, GET, DELETE, CopyObject): the payload hash is
that of the empty string, which S3 accepts over HTTP and HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def host_of(url: str) -> str:
    """The Host header botocore signs: lower-case, the port only when not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def canonical_query(query: str) -> str:
    """The query as sent (already RFC 3986 encoded), its pairs sorted."""
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{k}={v}" for k, v in pairs)


class S3Signer:
    """Signs with one set of credentials (botocore's, refreshed as botocore refreshes them)."""

    def __init__(self, credentials: Any, region: str, service: str = "s3") -> None:
        self._credentials = credentials
        self.region, self.service = region, service
        self._keys: dict[tuple[str, str], bytes] = {}  # (secret, yyyymmdd) -> signing key
        self._lock = threading.Lock()

    def _signing_key(self, secret: str, day: str) -> bytes:
        with self._lock:
            key = self._keys.get((secret, day))
            if key is None:
                key = _hmac(f"AWS4{secret}".encode(), day)
                for part in (self.region, self.service, "aws4_request"):
                    key = _hmac(key, part)
                self._keys = {(secret, day): key}  # yesterday's key is no longer needed
            return key

    def headers(
        self, method: str, url: str, headers: dict[str, str] | None = None, *, now: datetime | None = None
    ) -> dict[str, str]:
        """`headers` plus Host, X-Amz-Date, X-Amz-Content-SHA256, the session token if any, and
        Authorization."""
        frozen = self._credentials.get_frozen_credentials()
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        out = dict(headers or {})
        out["X-Amz-Date"] = stamp
        out["X-Amz-Content-SHA256"] = EMPTY_SHA256
        if frozen.token:
            out["X-Amz-Security-Token"] = frozen.token
        signed = {name.lower(): " ".join(value.split()) for name, value in out.items()}
        signed["host"] = host_of(url)
        names = sorted(signed)
        parts = urlsplit(url)
        canonical = "\n".join(
            (
                method.upper(),
                parts.path or "/",
                canonical_query(parts.query),
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                EMPTY_SHA256,
            )
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(frozen.secret_key, day), to_sign.encode(), hashlib.sha256)
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature.hexdigest()}"
        )
        return out
