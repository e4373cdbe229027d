"""A moto server for one sandbox "region", plus the two S3 behaviours moto lacks.

moto stores S3 replication rules and bucket policies but acts on neither. This process wraps
moto's WSGI app with a thin middleware that adds:

- a **change feed**: every successful S3 object write or delete is appended to an in-memory
  journal, read by the replicator at `GET /_mldr/changes?since=N` (S3 event notifications,
  in effect), so replication costs one small request per change, not a bucket listing;
- **bucket-policy enforcement for writes**: a request to put or delete an object is refused
  with 403 AccessDenied when the bucket policy denies it (moto's own policy evaluator
  decides). This is how a failover's write fence refuses writes in the sandbox. The
  replicator's requests carry `x-mldr-replication: true` and are exempt, as S3 replication
  uses `s3:ReplicateObject`, which a fence on `s3:PutObject` does not deny.
- **replication status at write time**: S3 marks a version PENDING the moment it acknowledges the
  write. Here, before a write to a bucket with replication rules is acknowledged, the replicator
  is told to read the feed now (`POST /observe`), so a write the client saw succeed is always in
  the replication backlog, even if this region stops the next instant. Best effort: with the
  replicator down the write still succeeds and the feed carries the change later.

Run as `python -m mldr.sandbox.motoserver --port P --name us-east-1`; binds 127.0.0.1 only.
A region outage in the sandbox is this process receiving SIGSTOP.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from werkzeug.serving import make_server

log = logging.getLogger("mldr.sandbox.motoserver")

REPLICATION_HEADER = "HTTP_X_MLDR_REPLICATION"
JOURNAL_LIMIT = 2_000_000
#: How long a write waits for the replicator to take it into its backlog (then the feed does).
OBSERVE_TIMEOUT = 1.0
ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class Change:
    seq: int
    at: float
    bucket: str
    key: str | None  # None: a bucket-level change (rules, batch delete): rescan the bucket
    method: str
    version_id: str | None = None  # from x-amz-version-id: the version this write created
    delete_marker: bool = False
    size: int | None = None


class ChangeJournal:
    """Append-only, bounded, thread-safe list of S3 mutations, addressed by sequence number."""

    def __init__(self, limit: int = JOURNAL_LIMIT) -> None:
        self.boot_id = uuid.uuid4().hex
        self._events: deque[Change] = deque(maxlen=limit)
        self._seq = 0
        self._lock = threading.Lock()

    def append(
        self,
        *,
        bucket: str,
        key: str | None,
        method: str,
        version_id: str | None = None,
        delete_marker: bool = False,
        size: int | None = None,
    ) -> int:
        """Append a change; returns its sequence number."""
        with self._lock:
            self._seq += 1
            self._events.append(
                Change(self._seq, time.time(), bucket, key, method, version_id, delete_marker, size)
            )
            return self._seq

    def since(self, seq: int, limit: int = 10_000) -> dict[str, Any]:
        with self._lock:
            oldest = self._events[0].seq if self._events else self._seq + 1
            truncated = seq + 1 < oldest and seq < self._seq
            events = [asdict(e) for e in self._events if e.seq > seq][:limit]
            return {"boot_id": self.boot_id, "head": self._seq, "truncated": truncated, "events": events}


def _is_s3(environ: dict[str, Any]) -> bool:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return "/s3/aws4_request" in auth


def _split_path(path: str) -> tuple[str | None, str | None]:
    parts = path.lstrip("/").split("/", 1)
    bucket = unquote(parts[0]) if parts and parts[0] else None
    key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
    return bucket, key


def _object_action(method: str, query: dict[str, list[str]]) -> str | None:
    """The IAM action a path-style object request needs, or None if it is not a write."""
    if method == "PUT":
        if "tagging" in query or "acl" in query or "retention" in query or "legal-hold" in query:
            return None
        return "s3:PutObject"
    if method == "DELETE" and "uploadId" not in query and "tagging" not in query:
        return "s3:DeleteObject"
    if method == "POST" and "uploadId" in query:
        return "s3:PutObject"
    return None


def _denied(bucket_name: str, key: str, action: str) -> bool:
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import s3_backends

    bucket = s3_backends[ACCOUNT_ID]["aws"].buckets.get(bucket_name)
    if bucket is None or bucket.policy is None:
        return False
    result = bucket.get_permission(action, f"arn:aws:s3:::{bucket_name}/{key}")
    return bool(result == PermissionResult.DENIED)


def _stored_replication(bucket_name: str) -> Any:
    from moto.s3.models import s3_backends

    bucket = s3_backends[ACCOUNT_ID]["aws"].buckets.get(bucket_name)
    return getattr(bucket, "replication", None) if bucket is not None else None


def _access_denied(start_response: Callable[..., Any], bucket: str, key: str) -> Iterable[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
        f"<Message>Access Denied: the bucket policy of {bucket} denies writes to {key} "
        "(mldr write fence?)</Message></Error>"
    ).encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


_request = threading.local()


def _exempt_replication_from_bucket_policy() -> None:
    """moto itself refuses object writes a bucket policy denies; let replication through.

    Real S3 replicates with `s3:ReplicateObject`, which a write fence on `s3:PutObject` does
    not deny. moto evaluates the policy for the request's thread, so a thread-local flag set by
    the middleware for a replicator request makes moto's check neutral for that request only.
    """
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if getattr(_request, "replicating", False):
            return PermissionResult.NEUTRAL
        return original(self, action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


class SandboxS3Middleware:
    """Adds the change feed and write-fence enforcement in front of moto's dispatcher."""

    def __init__(
        self, app: Callable[..., Any], journal: ChangeJournal, name: str, replicator_url: str | None = None
    ) -> None:
        self.app = app
        self.journal = journal
        self.name = name
        self.replicator_url = replicator_url

    def _register_pending(self, bucket: str, seq: int) -> None:
        """Have the replicator take this write into its backlog before the client hears "done"."""
        if not self.replicator_url or not _stored_replication(bucket):
            return
        from mldr import http

        try:
            http.post(
                f"{self.replicator_url}/observe",
                params={"region": self.name, "seq": seq},
                timeout=OBSERVE_TIMEOUT,
            )
        except Exception as exc:  # best effort: the feed still carries the change
            log.debug("replicator not told about a write to %s: %s", bucket, exc)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_mldr/"):
            return self._own(path, environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("PUT", "POST", "DELETE") or not _is_s3(environ):
            return self.app(environ, start_response)  # type: ignore[no-any-return]

        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        bucket, key = _split_path(path)
        if bucket is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        action = _object_action(method, query) if key else None
        replicating = environ.get(REPLICATION_HEADER, "").lower() == "true"
        if key and action and not replicating and _denied(bucket, key, action):
            log.info("refused %s %s/%s: denied by bucket policy", action, bucket, key)
            return _access_denied(start_response, bucket, key)

        status: list[str] = []
        response_headers: dict[str, str] = {}
        _request.replicating = replicating

        def recording_start_response(s: str, headers: list[Any], exc_info: Any = None) -> Any:
            status.append(s)
            response_headers.update((k.lower(), v) for k, v in headers)
            return start_response(s, headers, exc_info) if exc_info else start_response(s, headers)

        try:
            result = self.app(environ, recording_start_response)
        finally:
            _request.replicating = False
        ok = bool(status) and status[0][:1] == "2"
        if ok:
            if key and action:
                size = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH")
                copying = "HTTP_X_AMZ_COPY_SOURCE" in environ
                seq = self.journal.append(
                    bucket=bucket,
                    key=key,
                    method=method,
                    version_id=response_headers.get("x-amz-version-id"),
                    delete_marker=response_headers.get("x-amz-delete-marker", "").lower() == "true",
                    size=int(size) if size and method == "PUT" and not copying else None,
                )
                if not replicating:
                    self._register_pending(bucket, seq)
            elif key is None and method in ("PUT", "POST", "DELETE"):
                # Bucket-level writes: rules, policy, versioning, batch delete (keys are in the body).
                self.journal.append(bucket=bucket, key=None, method=method)
        return result  # type: ignore[no-any-return]

    def _own(self, path: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if path == "/_mldr/changes":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            since = int(query.get("since", ["0"])[0])
            limit = int(query.get("limit", ["10000"])[0])
            payload: dict[str, Any] = self.journal.since(since, limit)
        elif path == "/_mldr/replication":
            # moto's GetBucketReplication answers DeleteMarkerReplication "Disabled" and an
            # empty prefix whatever was put; the replicator reads the stored rules here instead.
            query = parse_qs(environ.get("QUERY_STRING", ""))
            payload = {"replication": _stored_replication(query.get("bucket", [""])[0])}
        elif path == "/_mldr/ping":
            payload = {
                "name": self.name,
                "boot_id": self.journal.boot_id,
                "head": self.journal.since(10**18)["head"],
            }
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown sandbox endpoint"}']
        body = json.dumps(payload).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def build_app(name: str, replicator_url: str | None = None) -> SandboxS3Middleware:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    _exempt_replication_from_bucket_policy()
    return SandboxS3Middleware(
        DomainDispatcherApplication(create_backend_app), ChangeJournal(), name, replicator_url
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True, help="region name (or 'global'), for logs")
    parser.add_argument("--replicator-url", help="told of each replicated write before it is acknowledged")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    server = make_server(
        "127.0.0.1",
        args.port,
        build_app(args.name, args.replicator_url),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    log.info("moto server for %s listening on 127.0.0.1:%d", args.name, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
