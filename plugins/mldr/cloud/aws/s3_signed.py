"""S3 REST calls signed with a client's own credentials, sent without botocore's machinery.

For the hot loops - listing pages, resync copies - where botocore's per-call cost (building the
request, its handlers, parsing the answer: ~2 ms of CPU a call, more for a 1,000-key page) is
more than the server takes to answer. The request is signed exactly as botocore signs it
(SigV4, `mldr.cloud.aws.sigv4`); transport errors and S3's retryable statuses are retried with backoff as
botocore's standard mode does; a region that does not answer becomes `RegionUnreachable`.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from mldr.cloud.aws import lean_http
from mldr.cloud.aws.clients import Timeouts
from mldr.cloud.aws.errors import unreachable
from mldr.cloud.aws.sigv4 import S3Signer

RETRYABLE_STATUS = {500, 502, 503, 504}


def encode(value: str, safe: str = "-_.~") -> str:
    """RFC 3986 strict, as SigV4 canonicalises it: what we sign is exactly what we send."""
    return quote(value, safe=safe)


def error_from(response: Any, operation: str) -> ClientError:
    """botocore's error for an S3 error answer (its XML `Code` and `Message` when present)."""
    code, message = f"HTTP{response.status}", response.reason or ""
    try:
        root = ET.fromstring(response.data)
        code = root.findtext("Code") or code
        message = root.findtext("Message") or message
    except ET.ParseError:
        pass
    # The status too, as botocore's own errors carry it: the translation falls back on it.
    answer: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": response.status},
    }
    return ClientError(answer, operation)


class SignedS3:
    """One region's S3 endpoint, with the credentials of a botocore client for it."""

    def __init__(self, client: Any, *, region: str, timeouts: Timeouts) -> None:
        self.region = region
        self.timeouts = timeouts
        self.endpoint = str(client.meta.endpoint_url).rstrip("/")
        # boto3's own CRT integration reads the client's credentials the same way.
        credentials = client._get_credentials()
        self._signer = S3Signer(credentials, region) if credentials is not None else None
        self.requests = 0

    def url(self, bucket: str, key: str | None = None, query: dict[str, str] | None = None) -> str:
        path = f"{self.endpoint}/{encode(bucket)}"
        if key is not None:
            path += "/" + encode(key, safe="-_.~/")
        if query:
            path += "?" + "&".join(f"{k}={encode(v)}" for k, v in sorted(query.items()))
        return path

    def signed_headers(self, method: str, url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
        if self._signer is None:
            return dict(headers or {})  # anonymous access (unsigned), as botocore does without credentials
        return self._signer.headers(method, url, headers)

    def send(
        self,
        method: str,
        url: str,
        *,
        resource: str,
        headers: dict[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Any:
        """The answer (any status but a retryable one while attempts remain)."""
        limits = timeouts or self.timeouts
        timeout = lean_http.timeout(connect=limits.connect, read=limits.read)
        attempts = max(1, limits.max_attempts)
        for attempt in range(1, attempts + 1):
            self.requests += 1
            try:
                response = lean_http.pool().request(
                    method, url, headers=self.signed_headers(method, url, headers), timeout=timeout
                )
            except lean_http.TransportError as exc:
                if attempt < attempts:
                    continue
                raise unreachable(exc, resource=resource, region=self.region) from exc
            if response.status in RETRYABLE_STATUS and attempt < attempts:
                time.sleep(0.2 * 2**attempt)  # S3 SlowDown / InternalError: back off, as botocore does
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
