"""The sandbox's S3 Cross-Region Replication: moto stores replication rules but copies nothing.

Follows each region's change feed (`mldr.sandbox.motoserver`), and for every new object version
or delete marker in a bucket whose replication configuration has an enabled rule matching the
key, copies it to the rule's destination bucket (found in whichever region holds it),
preserving key, bytes, content type, user metadata and SHA-256 checksum. Like S3:

- replicas are never replicated again (no ping-pong between two-way rules);
- versions older than the rule are not replicated (S3 needs Batch Replication for those);
- delete markers replicate only when the rule says `DeleteMarkerReplication: Enabled`;
  deletes of a specific version never replicate;
- versions of one key are applied in order; a destination that does not answer is retried;
- a destination whose bucket policy denies the replica (`AccessDenied`) FAILS the version;
- it copies with the rule's role (`Role`): the credentials of the principal playing that role
  (`roles` in the config; `mldr.sandbox.iam`), whose declared policy moto enforces on the source
  read (`s3:GetObjectVersionForReplication`) and the replica write (`s3:ReplicateObject`,
  `s3:ReplicateDelete`); a permission the role lacks, or a role it cannot assume, FAILS the
  version with the denial, as S3 reports it. Finding buckets and listing versions is S3's own
  fabric and runs as admin;
- only keys under the rule's `Filter.Prefix` replicate;
- an SSE-KMS object replicates only when the rule selects SSE-KMS objects
  (`SourceSelectionCriteria.SseKmsEncryptedObjects`), and its replica is encrypted with the
  rule's replica key (`Destination.EncryptionConfiguration.ReplicaKmsKeyID`); otherwise S3
  skips it without a word - no replica, no replication status - and so does this.

Faults for drills and tests: a lag (default 1 s), pause/resume, and keys failing by glob
(those are FAILED, as S3 reports them; `clear` re-queues them, like a Batch Replication job).

The same process copies the control-state table between its two replicas, as a DynamoDB
global table does (`mldr.sandbox.control_replicas`); `control_split` stops that copy.

The per-version status (PENDING / COMPLETED / FAILED) is what S3 reports as
`x-amz-replication-status`; moto does not set it, so the sandbox serves it here:
`GET /status`, `GET /backlog?bucket=B`. Read it only through `mldr.checks.replication_status`.
S3 knows a version is PENDING from the moment it acknowledges the write; a region's moto server
matches that by calling `POST /observe?region=R&seq=N` (read that feed up to N now) before it
answers a write to a replicated bucket, so an acknowledged write is in the backlog even if its
region then stops.

Run as `python -m mldr.sandbox.replicator --config .sandbox/replicator.json --port P`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mldr.sandbox.control_replicas import ControlTableCopier
from mldr.sandbox.listen import HOST, add_listen_arguments, port_of, server_socket

log = logging.getLogger("mldr.sandbox.replicator")

POLL_SECONDS = 0.1
RULES_REFRESH_SECONDS = 2.0
RETRY_SECONDS = 1.0
# Versions older than the rule by more than this are "pre-existing" and not replicated.
RULE_GRACE_SECONDS = 1.0


class Status(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass
class Entry:
    """One source version (or delete marker) and where its replica stands."""

    source_region: str
    bucket: str
    key: str
    version_id: str
    is_delete_marker: bool
    size: int
    created_at: float  # source LastModified (epoch)
    detected_at: float
    dest_region: str
    dest_bucket: str
    #: the role the rule replicates with (its ARN)
    role: str = ""
    #: the rule selects SSE-KMS objects, and the key their replicas are encrypted with
    kms_selected: bool = False
    replica_kms_key: str | None = None
    status: Status = Status.PENDING
    attempts: int = 0
    replica_version_id: str | None = None
    completed_at: float | None = None
    error: str | None = None
    next_try_at: float = 0.0

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["age_seconds"] = max(0.0, time.time() - self.created_at)
        data.pop("next_try_at")
        return data


@dataclass(frozen=True)
class Rule:
    rule_id: str
    prefix: str
    dest_bucket: str
    delete_markers: bool
    priority: int
    kms_selected: bool = False
    replica_kms_key: str | None = None
    role: str = ""


@dataclass
class Settings:
    paused: bool = False
    lag_seconds: float = 1.0
    fail_globs: list[str] = field(default_factory=list)


#: The admin's keys: what S3's own fabric (finding buckets, listing versions) runs as.
ADMIN_KEYS = ("testing", "testing")


class RoleNotAssumable(Exception):
    """The rule names a role the replicator has no credentials for: S3 fails such a version."""


def _s3(endpoint: str, region: str, *, read_timeout: float = 5.0, keys: tuple[str, str] = ADMIN_KEYS) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        config=Config(
            connect_timeout=1.0,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": 1},
            s3={"addressing_style": "path"},
            max_pool_connections=32,
        ),
    )


def _mark_as_replication(request: Any, **_: Any) -> None:
    request.headers["x-mldr-replication"] = "true"


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value else time.time()


class Replicator:
    def __init__(
        self,
        regions: dict[str, str],
        *,
        lag_seconds: float = 1.0,
        workers: int = 16,
        roles: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        """`roles`: each replication role's ARN -> the keys of the principal playing it; None
        copies as admin (a replicator without IAM)."""
        self.regions = regions
        self.roles = roles
        self.role_clients: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.settings = Settings(lag_seconds=lag_seconds)
        self.clients = {r: _s3(url, r) for r, url in regions.items()}
        self.writers = {}
        for r, url in regions.items():
            writer = _s3(url, r, read_timeout=30.0)
            writer.meta.events.register("before-sign.s3.*", _mark_as_replication)
            self.writers[r] = writer
        self.feed = httpx.Client(timeout=httpx.Timeout(1.0, connect=0.5))
        self.cursors: dict[str, int] = dict.fromkeys(regions, 0)
        self.boot_ids: dict[str, str] = {}
        self.entries: dict[tuple[str, str, str], Entry] = {}  # (bucket, key, version) -> entry
        self.open: dict[tuple[str, str, str], Entry] = {}  # the entries not COMPLETED yet
        self.replicas: set[tuple[str, str]] = set()  # (bucket, version) written by us
        self.rules: dict[str, tuple[float, list[Rule]]] = {}  # bucket -> (seen_at, rules)
        self.rules_fetched: dict[str, float] = {}
        self.bucket_region: dict[str, str] = {}
        self.in_flight: set[tuple[str, str]] = set()  # (bucket, key) being copied
        self.lock = threading.RLock()
        # One reader of the change feeds at a time: the loop and `observe` share the cursors.
        self.feed_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="replicate")
        self.stop = threading.Event()
        self.copied = 0
        self.bytes_copied = 0
        self.control: ControlTableCopier | None = None  # the control table's replicas, if given
        self.skipped = 0  # versions S3 would not replicate (SSE-KMS, not selected by the rule)

    # --- discovery ---------------------------------------------------------------------

    def _region_of(self, bucket: str) -> str | None:
        if bucket in self.bucket_region:
            return self.bucket_region[bucket]
        for region, client in self.clients.items():
            try:
                client.head_bucket(Bucket=bucket)
            except (ClientError, BotoCoreError):
                continue
            self.bucket_region[bucket] = region
            return region
        return None

    def _load_rules(
        self, region: str, bucket: str, *, force: bool = False, changed_at: float | None = None
    ) -> list[Rule]:
        now = time.time()
        if not force and now - self.rules_fetched.get(bucket, 0.0) < RULES_REFRESH_SECONDS:
            return self.rules.get(bucket, (0.0, []))[1]
        self.rules_fetched[bucket] = now
        try:
            response = self.feed.get(f"{self.regions[region]}/_mldr/replication", params={"bucket": bucket})
            response.raise_for_status()
        except httpx.HTTPError:
            return self.rules.get(bucket, (0.0, []))[1]
        config = response.json()["replication"]
        rules: list[Rule] = []
        if config:
            raw_rules = config.get("Rule", [])
            for raw in raw_rules if isinstance(raw_rules, list) else [raw_rules]:
                if raw.get("Status") != "Enabled":
                    continue
                prefix = (raw.get("Filter") or {}).get("Prefix", raw.get("Prefix", "")) or ""
                dest_arn = raw["Destination"]["Bucket"]
                selection = (raw.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects") or {}
                encryption = raw["Destination"].get("EncryptionConfiguration") or {}
                rules.append(
                    Rule(
                        rule_id=raw.get("ID", ""),
                        prefix=prefix,
                        dest_bucket=dest_arn.split(":::", 1)[-1],
                        delete_markers=(raw.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled",
                        priority=int(raw.get("Priority", 0)),
                        kms_selected=selection.get("Status") == "Enabled",
                        replica_kms_key=encryption.get("ReplicaKmsKeyID") or None,
                        role=str(config.get("Role", "")),
                    )
                )
            rules.sort(key=lambda r: -r.priority)
        previous = self.rules.get(bucket)
        if previous is None or previous[1] != rules:
            # A new or changed rule applies to versions written from now on.
            self.rules[bucket] = (changed_at or now, rules)
            if rules:
                log.info("bucket %s (%s): %d replication rule(s) active", bucket, region, len(rules))
        return rules

    def _matching_rule(self, bucket: str, key: str) -> Rule | None:
        for rule in self.rules.get(bucket, (0.0, []))[1]:
            if key.startswith(rule.prefix):
                return rule
        return None

    def _poll_region(self, region: str) -> None:
        url = self.regions[region]
        try:
            response = self.feed.get(f"{url}/_mldr/changes", params={"since": self.cursors[region]})
            response.raise_for_status()
        except httpx.HTTPError:
            return  # region down or busy: replication from it waits, like S3's
        payload = response.json()
        if self.boot_ids.get(region) not in (None, payload["boot_id"]) or payload["truncated"]:
            log.warning("change feed of %s restarted or truncated; rescanning", region)
            self.cursors[region] = 0
        self.boot_ids[region] = payload["boot_id"]
        for event in payload["events"]:
            self.cursors[region] = event["seq"]
            bucket, key = event["bucket"], event["key"]
            self.bucket_region[bucket] = region
            rules = self._load_rules(region, bucket, force=key is None, changed_at=event["at"])
            if not rules or key is None:
                continue  # bucket-level change: rules reloaded; versions before a rule don't replicate
            if event.get("version_id"):
                # The feed names the version the write created: no listing needed.
                version = {
                    "Key": key,
                    "VersionId": event["version_id"],
                    "Size": event.get("size") or 0,
                    "LastModified": datetime.fromtimestamp(event["at"]),
                }
                self._observe(region, bucket, version, delete_marker=bool(event.get("delete_marker")))
            elif event["method"] != "DELETE":
                self._scan(region, bucket, {key})

    def _scan(self, region: str, bucket: str, keys: set[str] | None) -> None:
        """Find versions not yet known under the given keys (None: the whole bucket)."""
        client = self.clients[region]
        prefixes = sorted(keys) if keys is not None else [""]
        for prefix in prefixes:
            try:
                pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
                for page in pages:
                    for v in page.get("Versions", []):
                        if keys is None or v["Key"] == prefix:
                            self._observe(region, bucket, v, delete_marker=False)
                    for m in page.get("DeleteMarkers", []):
                        if keys is None or m["Key"] == prefix:
                            self._observe(region, bucket, m, delete_marker=True)
            except (ClientError, BotoCoreError) as exc:
                log.warning("cannot list %s in %s: %s", bucket, region, exc)

    def _observe(self, region: str, bucket: str, version: dict[str, Any], *, delete_marker: bool) -> None:
        key, version_id = version["Key"], version["VersionId"]
        ident = (bucket, key, version_id)
        with self.lock:
            if ident in self.entries or (bucket, version_id) in self.replicas:
                return
            rule = self._matching_rule(bucket, key)
            if rule is None or (delete_marker and not rule.delete_markers):
                return
            created = _epoch(version.get("LastModified"))
            rule_seen = self.rules[bucket][0]
            if created < rule_seen - RULE_GRACE_SECONDS:
                return
            dest_region = self._region_of(rule.dest_bucket)
            if dest_region is None:
                log.warning(
                    "rule %s of %s: destination bucket %s not found", rule.rule_id, bucket, rule.dest_bucket
                )
                return
            now = time.time()
            entry = Entry(
                source_region=region,
                bucket=bucket,
                key=key,
                version_id=version_id,
                is_delete_marker=delete_marker,
                size=int(version.get("Size", 0)),
                created_at=created,
                detected_at=now,
                dest_region=dest_region,
                dest_bucket=rule.dest_bucket,
                kms_selected=rule.kms_selected,
                replica_kms_key=rule.replica_kms_key,
                role=rule.role,
                next_try_at=now + self.settings.lag_seconds,
            )
            if any(fnmatch.fnmatchcase(key, g) for g in self.settings.fail_globs):
                entry.status = Status.FAILED
                entry.error = "injected failure (sandbox fail-keys)"
                log.info("replication of %s/%s marked FAILED by fault injection", bucket, key)
            self.entries[ident] = entry
            self.open[ident] = entry

    # --- copying -----------------------------------------------------------------------

    def _due(self) -> list[Entry]:
        now = time.time()
        with self.lock:
            if self.settings.paused:
                return []
            per_key: dict[tuple[str, str], Entry] = {}
            for entry in self.open.values():
                if entry.status is not Status.PENDING:
                    continue
                slot = (entry.bucket, entry.key)
                current = per_key.get(slot)
                # Oldest first per key, so the replica's latest version is the source's latest.
                if current is None or entry.created_at < current.created_at:
                    per_key[slot] = entry
            due = []
            for slot, entry in per_key.items():
                if slot in self.in_flight or entry.next_try_at > now:
                    continue
                if now < entry.detected_at + self.settings.lag_seconds:
                    continue
                self.in_flight.add(slot)
                due.append(entry)
            return due

    def _as_role(self, role: str, region: str) -> tuple[Any, Any]:
        """(reader, writer) for `region` with `role`'s credentials, marked as replication."""
        if self.roles is None:
            return self.clients[region], self.writers[region]
        if role not in self.roles:
            raise RoleNotAssumable(
                f"the rule's role {role or '(none)'} cannot be assumed"
                f" (the sandbox's roles: {', '.join(self.roles) or 'none'})"
            )
        if (role, region) not in self.role_clients:
            reader = _s3(self.regions[region], region, keys=self.roles[role])
            writer = _s3(self.regions[region], region, read_timeout=30.0, keys=self.roles[role])
            for client in (reader, writer):
                client.meta.events.register("before-sign.s3.*", _mark_as_replication)
            self.role_clients[(role, region)] = (reader, writer)
        return self.role_clients[(role, region)]

    def _copy(self, entry: Entry) -> None:
        try:
            reader = self._as_role(entry.role, entry.source_region)[0]
            writer = self._as_role(entry.role, entry.dest_region)[1]
            if entry.is_delete_marker:
                result = writer.delete_object(Bucket=entry.dest_bucket, Key=entry.key)
                replica_version = result.get("VersionId")
                size = 0
            else:
                source = reader.get_object(
                    Bucket=entry.bucket, Key=entry.key, VersionId=entry.version_id, ChecksumMode="ENABLED"
                )
                if source.get("ServerSideEncryption") == "aws:kms" and not entry.kms_selected:
                    self._skip(entry, "an SSE-KMS object, and the rule does not select SSE-KMS objects")
                    return
                body = source["Body"].read()
                put: dict[str, Any] = {
                    "Bucket": entry.dest_bucket,
                    "Key": entry.key,
                    "Body": body,
                    "Metadata": source.get("Metadata", {}),
                    "ChecksumAlgorithm": "SHA256",
                }
                if source.get("ContentType"):
                    put["ContentType"] = source["ContentType"]
                if source.get("ServerSideEncryption") == "aws:kms":
                    put["ServerSideEncryption"] = "aws:kms"
                    if entry.replica_kms_key:
                        put["SSEKMSKeyId"] = entry.replica_kms_key
                elif source.get("ServerSideEncryption"):
                    put["ServerSideEncryption"] = source["ServerSideEncryption"]
                if source.get("ChecksumSHA256"):
                    # S3 verifies the bytes against the source's checksum: a corrupted copy fails.
                    put["ChecksumSHA256"] = source["ChecksumSHA256"]
                result = writer.put_object(**put)
                replica_version = result.get("VersionId")
                size = len(body)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            with self.lock:
                entry.attempts += 1
                entry.error = f"{code}: {exc}"
                if code in ("NoSuchVersion", "NoSuchKey"):
                    # The source version was deleted before it could be copied; nothing to replicate.
                    entry.status = Status.FAILED
                elif code == "AccessDenied":
                    # The destination denies s3:ReplicateObject (a failover's replica guard), or
                    # the role lacks a permission: S3 marks the version FAILED, no retry.
                    entry.status = Status.FAILED
                    log.warning("replication of %s/%s FAILED: %s", entry.bucket, entry.key, entry.error)
                else:
                    entry.next_try_at = time.time() + RETRY_SECONDS
        except RoleNotAssumable as exc:
            with self.lock:
                entry.attempts += 1
                entry.error = str(exc)
                entry.status = Status.FAILED
        except BotoCoreError as exc:
            with self.lock:
                entry.attempts += 1
                entry.error = f"{type(exc).__name__}: {exc}"
                entry.next_try_at = time.time() + RETRY_SECONDS
        else:
            with self.lock:
                entry.status = Status.COMPLETED
                entry.completed_at = time.time()
                entry.replica_version_id = replica_version
                entry.error = None
                self.open.pop((entry.bucket, entry.key, entry.version_id), None)
                if replica_version:
                    self.replicas.add((entry.dest_bucket, replica_version))
                self.copied += 1
                self.bytes_copied += size
        finally:
            with self.lock:
                self.in_flight.discard((entry.bucket, entry.key))

    def _skip(self, entry: Entry, why: str) -> None:
        """S3 does not replicate this version at all: no replica and no replication status."""
        log.warning(
            "not replicating %s/%s (version %s): %s - as S3, which skips it silently",
            entry.bucket,
            entry.key,
            entry.version_id,
            why,
        )
        with self.lock:
            ident = (entry.bucket, entry.key, entry.version_id)
            self.open.pop(ident, None)
            self.entries.pop(ident, None)
            self.skipped += 1

    def run(self) -> None:
        log.info("replicating between %s (lag %.1fs)", ", ".join(self.regions), self.settings.lag_seconds)
        while not self.stop.is_set():
            for region in self.regions:
                with self.feed_lock:
                    self._poll_region(region)
            for entry in self._due():
                self.pool.submit(self._copy, entry)
            self.stop.wait(POLL_SECONDS)

    def observe(self, region: str, seq: int) -> dict[str, Any]:
        """Read `region`'s change feed up to at least `seq` now: its server is about to
        acknowledge that write, and S3 knows a version is PENDING from that moment, not from
        our next poll. Concurrent writers share one read (whoever gets the lock reads them all)."""
        if region not in self.regions:
            raise ValueError(f"unknown region {region!r}; known: {', '.join(self.regions)}")
        if self.cursors[region] < seq:
            with self.feed_lock:
                if self.cursors[region] < seq:
                    self._poll_region(region)
        return {"region": region, "cursor": self.cursors[region]}

    # --- the status channel and fault controls ------------------------------------------

    def status(self, bucket: str, key: str, version_id: str | None) -> dict[str, Any] | None:
        with self.lock:
            if version_id:
                entry = self.entries.get((bucket, key, version_id))
                if entry:
                    return entry.public()
                if (bucket, version_id) in self.replicas:
                    return {"status": "REPLICA", "bucket": bucket, "key": key, "version_id": version_id}
                return None
            matches = [e for (b, k, _), e in self.entries.items() if b == bucket and k == key]
            return max(matches, key=lambda e: e.created_at).public() if matches else None

    def backlog(self, bucket: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [e.public() for e in self.open.values() if bucket is None or e.bucket == bucket]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            counts: dict[str, int] = defaultdict(int)
            for e in self.entries.values():
                counts[e.status.value] += 1
            return {
                "settings": asdict(self.settings),
                "counts": dict(counts),
                "copied": self.copied,
                "bytes_copied": self.bytes_copied,
                "skipped": self.skipped,
                "rules": {b: [asdict(r) for r in rules] for b, (_, rules) in self.rules.items() if rules},
                "control": self.control.stats() if self.control is not None else None,
            }

    def update_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if "paused" in changes:
                self.settings.paused = bool(changes["paused"])
            if "lag_seconds" in changes:
                lag = float(changes["lag_seconds"])
                if lag < 0:
                    raise ValueError("lag_seconds must be >= 0")
                self.settings.lag_seconds = lag
            if "fail_globs" in changes:
                self.settings.fail_globs = [str(g) for g in changes["fail_globs"]]
            if "control_split" in changes and self.control is not None:
                self.control.set_split(bool(changes["control_split"]))
            log.info("settings now %s", asdict(self.settings))
            return asdict(self.settings)

    def clear(self) -> dict[str, Any]:
        """Lift every fault and re-queue failed versions (S3 Batch Replication, in effect)."""
        with self.lock:
            self.settings = Settings(lag_seconds=1.0)
            if self.control is not None:
                self.control.set_split(False)
            requeued = 0
            for entry in self.open.values():
                if entry.status is Status.FAILED:
                    entry.status = Status.PENDING
                    entry.error = None
                    entry.next_try_at = 0.0
                    entry.detected_at = time.time()
                    requeued += 1
            log.info("faults cleared; %d failed version(s) re-queued", requeued)
            return {"settings": asdict(self.settings), "requeued": requeued}


class _Handler(BaseHTTPRequestHandler):
    replicator: Replicator

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        r = self.replicator
        if parts.path == "/health":
            self._send(200, {"ok": True})
        elif parts.path == "/stats":
            self._send(200, r.stats())
        elif parts.path == "/status":
            if "bucket" not in query or "key" not in query:
                self._send(400, {"error": "bucket and key are required"})
                return
            found = r.status(query["bucket"], query["key"], query.get("version_id"))
            self._send(200 if found else 404, found or {"error": "no replication record for that version"})
        elif parts.path == "/backlog":
            self._send(200, {"backlog": r.backlog(query.get("bucket"))})
        else:
            self._send(404, {"error": f"unknown path {parts.path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as exc:
            self._send(400, {"error": f"body is not JSON: {exc}"})
            return
        r = self.replicator
        try:
            if self.path == "/settings":
                self._send(200, r.update_settings(payload))
            elif (parts := urlsplit(self.path)).path == "/observe":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._send(200, r.observe(query.get("region", ""), int(query.get("seq", "0"))))
            elif self.path == "/clear":
                self._send(200, r.clear())
            else:
                self._send(404, {"error": f"unknown path {self.path}"})
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sandbox S3 cross-region replicator")
    parser.add_argument(
        "--config", required=True, help="JSON: {regions: {name: endpoint}, lag_seconds, roles: {arn: keys}}"
    )
    add_listen_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per feed poll buries the log
    config = json.loads(Path(args.config).read_text())
    roles = config.get("roles")
    replicator = Replicator(
        config["regions"],
        lag_seconds=float(config.get("lag_seconds", 1.0)),
        roles=None
        if roles is None
        else {arn: (k["access_key_id"], k["secret_access_key"]) for arn, k in roles.items()},
    )
    if config.get("control"):
        control = config["control"]
        replicator.control = ControlTableCopier(control["endpoint"], control["table"], control["regions"])
        threading.Thread(
            target=replicator.control.run, args=(replicator.stop,), daemon=True, name="control"
        ).start()
    _Handler.replicator = replicator
    sock = server_socket(args)
    server = ThreadingHTTPServer(sock.getsockname(), _Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock  # already bound and listening
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    log.info("replicator API on %s:%d", HOST, port_of(sock))
    replicator.run()


if __name__ == "__main__":
    main()
