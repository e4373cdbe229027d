"""Recovery points: can the standby region restore what the policy promises?

- **Restore test**: a sample of replicas (the newest always included) is downloaded, hashed
  and compared with the source's record.
- **Point in time**: both buckets keep versioning, no lifecycle rule expires noncurrent versions
  sooner than the dataset's retention policy, and (with `min_versions` > 1) the replica holds as
  many versions of each key as the policy needs.
- **ML recovery points** (model-artifacts datasets): for every model version's manifest, its
  whole dependency set - artifact, training snapshot, feature snapshot - exists in the standby
  region and matches the recorded SHA-256: "could we serve and retrain this exact model there?"
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mldr.checks.replication_status import ReplicationState, StatusSource
from mldr.checks.verification.compare import (
    Sampler,
    VersionEntry,
    b64_of_hex,
    checksum_verdict,
    is_content_etag,
    lifecycle_problems,
    object_lock_problems,
    required_versions,
)
from mldr.checks.verification.model import (
    RecoveryPointCheck,
    RefCheck,
    RefState,
    RestoreResult,
    RetentionResult,
)
from mldr.checks.verification.reads import ObjectReads
from mldr.cloud.objects import Versioning
from mldr.errors import ConfigurationError, MldrError, NotFound, RegistryError
from mldr.topology import Dataset, Topology

log = logging.getLogger(__name__)


class RecoveryPointChecks(ObjectReads):
    """The recovery-point checks of one dataset's run. The run (`run._DatasetCheck`) sets the
    attributes below, calls `retention_check` and `recovery_points` beside its listing pass and
    `restore_test` after it."""

    topology: Topology
    dataset: Dataset
    source_region: str
    target_region: str
    source_bucket: str
    target_bucket: str
    reserved: str
    status: StatusSource
    pool: ThreadPoolExecutor
    sampler: Sampler

    def restore_test(self) -> RestoreResult:
        keys = self.sampler.keys()
        if not keys:
            return RestoreResult([], [], [])

        def one(key: str) -> str | None:
            try:
                sha_hex, md5_hex, _ = self._download_hash(self.target_region, self.target_bucket, key)
                record = self._head(self.source_region, self.source_bucket, key)
                if record.sha256 and not record.composite:
                    expected, actual, what = record.sha256, b64_of_hex(sha_hex), "stored SHA-256"
                elif is_content_etag(record.etag) and not record.kms:
                    expected, actual, what = record.etag, md5_hex, "ETag (MD5)"
                else:
                    expected = self._download_hash(self.source_region, self.source_bucket, key)[0]
                    actual, what = sha_hex, "SHA-256 of its bytes"
                if expected != actual:
                    return f"restored bytes do not match the primary's {what}: {actual} vs {expected}"
            except MldrError as exc:
                return f"could not be restored: {exc}"
            return None

        errors = list(self.pool.map(one, keys))
        failures = [{"key": k, "error": e} for k, e in zip(keys, errors, strict=True) if e]
        verified = [k for k, e in zip(keys, errors, strict=True) if not e]
        for failure in failures:
            log.error(
                "restore test %s: s3://%s/%s %s",
                self.dataset.name,
                self.target_bucket,
                failure["key"],
                failure["error"],
            )
        return RestoreResult(keys, verified, failures)

    def _version_groups(self, region: str, bucket: str) -> Iterator[tuple[str, list[VersionEntry]]]:
        """(key, versions newest first) for every key under the prefix, streaming."""
        pending_key: str | None = None
        pending: list[VersionEntry] = []
        for version in self.stores[region].versions(bucket, prefix=self.dataset.prefix):
            key = version.key
            if key.startswith(self.reserved):
                continue
            if key != pending_key:
                if pending_key is not None:
                    yield pending_key, pending
                pending_key, pending = key, []
            pending.append(VersionEntry(version.modified, version.deleted))
        if pending_key is not None:
            yield pending_key, pending

    def retention_check(self) -> RetentionResult:
        policy = self.dataset.retention
        problems: list[str] = []
        for region, bucket in (
            (self.source_region, self.source_bucket),
            (self.target_region, self.target_bucket),
        ):
            store = self.stores[region]
            versioning = store.versioning(bucket)
            if versioning is not Versioning.ENABLED:
                problems.append(f"s3://{bucket}: versioning is {versioning}; no point-in-time restore")
            problems += lifecycle_problems(store.lifecycle_rules(bucket), self.dataset, bucket)
            if self.dataset.retention.object_lock_days is not None:
                problems += object_lock_problems(store.object_lock_days(bucket), self.dataset, bucket)
        short: list[dict[str, Any]] = []
        checked = policy.min_versions > 1
        if checked:
            now = time.time()
            groups = [
                self._version_groups(self.source_region, self.source_bucket),
                self._version_groups(self.target_region, self.target_bucket),
            ]
            src, dst = (iter(g) for g in groups)
            a, b = next(src, None), next(dst, None)
            while a is not None:
                while b is not None and b[0] < a[0]:
                    b = next(dst, None)
                need = required_versions(
                    a[1], min_versions=policy.min_versions, noncurrent_days=policy.noncurrent_days, now=now
                )
                have = sum(1 for e in b[1] if not e.delete_marker) if b is not None and b[0] == a[0] else 0
                if have < need and have > 0:
                    # no replica at all is reported by the compare pass (missing), not here
                    short.append({"key": a[0], "required": need, "replica_versions": have})
                a = next(src, None)
        return RetentionResult(policy.noncurrent_days, policy.min_versions, problems, short, checked)

    def recovery_points(self) -> list[RecoveryPointCheck]:
        from mldr.ml.registry import manifest_key, manifests_in

        try:
            manifests = manifests_in(self.stores[self.source_region], bucket=self.source_bucket)
        except RegistryError as exc:
            return [
                RecoveryPointCheck(
                    "(registry)",
                    "(unreadable)",
                    [RefCheck("manifest", self.dataset.name, "manifests/", RefState.ERROR, str(exc))],
                )
            ]

        def check(m: Any) -> RecoveryPointCheck:
            objects = [self._manifest_object(manifest_key(m.model_name, m.version))]
            roles = [
                ("artifact", m.artifact),
                ("training_snapshot", m.training_snapshot),
                ("feature_snapshot", m.feature_snapshot),
            ]
            objects += [self._ref(role, ref) for role, ref in roles if ref is not None]
            return RecoveryPointCheck(m.model_name, m.version, objects)

        return list(self.pool.map(check, manifests))

    def _absent(self, role: str, dataset: Dataset, key: str) -> RefCheck:
        bucket = dataset.buckets[self.source_region]
        try:
            state = self.status.status(region=self.source_region, bucket=bucket, key=key)
        except MldrError:
            state = ReplicationState.UNKNOWN
        if state is ReplicationState.PENDING:
            return RefCheck(role, dataset.name, key, RefState.PENDING, "replication pending")
        return RefCheck(
            role,
            dataset.name,
            key,
            RefState.MISSING,
            f"not in s3://{dataset.buckets[self.target_region]} (replication {state.value})",
        )

    def _manifest_object(self, key: str) -> RefCheck:
        """The manifest itself: compared with the source's copy (it records no hash of itself)."""
        try:
            dst = self._head(self.target_region, self.target_bucket, key)
        except NotFound:
            return self._absent("manifest", self.dataset, key)
        except MldrError as exc:
            return RefCheck("manifest", self.dataset.name, key, RefState.ERROR, str(exc))
        try:
            src = self._head(self.source_region, self.source_bucket, key)
        except MldrError as exc:
            return RefCheck("manifest", self.dataset.name, key, RefState.ERROR, str(exc))
        same = checksum_verdict(src, dst)
        if same is None:
            same = src.etag == dst.etag and is_content_etag(src.etag)
        if not same:
            return RefCheck(
                "manifest", self.dataset.name, key, RefState.MISMATCHED, "differs from the primary's"
            )
        return RefCheck("manifest", self.dataset.name, key, RefState.OK)

    def _ref(self, role: str, ref: Any) -> RefCheck:
        try:
            dataset = self.topology.dataset(ref.dataset)
        except ConfigurationError as exc:
            return RefCheck(role, ref.dataset, ref.key, RefState.ERROR, str(exc))
        region, bucket = self.target_region, dataset.buckets[self.target_region]
        try:
            head = self._head(region, bucket, ref.key)
        except NotFound:
            return self._absent(role, dataset, ref.key)
        except MldrError as exc:
            return RefCheck(role, dataset.name, ref.key, RefState.ERROR, str(exc))
        if head.size != ref.size:
            return RefCheck(
                role,
                dataset.name,
                ref.key,
                RefState.MISMATCHED,
                f"{head.size} bytes, the manifest records {ref.size}",
            )
        expected = b64_of_hex(ref.sha256)
        if head.sha256 and not head.composite:
            if head.sha256 != expected:
                return RefCheck(
                    role,
                    dataset.name,
                    ref.key,
                    RefState.MISMATCHED,
                    f"stored SHA-256 {head.sha256}, the manifest records {expected}",
                )
            return RefCheck(role, dataset.name, ref.key, RefState.OK)
        try:
            actual = self._download_hash(region, bucket, ref.key)[0]
        except MldrError as exc:
            return RefCheck(role, dataset.name, ref.key, RefState.ERROR, f"could not be read: {exc}")
        if actual != ref.sha256:
            return RefCheck(
                role,
                dataset.name,
                ref.key,
                RefState.MISMATCHED,
                f"sha256 of the bytes {actual}, the manifest records {ref.sha256}",
            )
        return RefCheck(role, dataset.name, ref.key, RefState.OK)
