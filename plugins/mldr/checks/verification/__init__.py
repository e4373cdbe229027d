"""Backup verification: is everything the standby region needs there, identical and restorable?

Read-only. For each dataset, the source bucket (the active region's) is compared with its replica:

- **Key set, size and content**, in one streaming LIST pass per side (`mldr.checks.listing`):
  content is compared by the listings' ETags where an ETag is a content hash (single-part, not
  SSE-KMS), and by the object's stored SHA-256 checksum (one HEAD per key and side, in parallel)
  where it is not (multipart, SSE-KMS) - or by the stored CRC64NVME where no SHA-256 settles it;
  objects with no stored checksum are downloaded and hashed.
  The report says which basis each key was compared on.
- **Classes**: `missing` (in the source, not in the replica), `extra` (only in the replica),
  `mismatched` (both, different content - a same-size edit included), `pending` (replication
  not finished and younger than the dataset's RPO, or the given threshold: not an error yet),
  `failed` (replication reported FAILED). Pending and failed come from per-version replication
  status (`mldr.checks.replication_status`), looked up only for keys that differ.
- **Restore test**: a sample of replicas (the newest always included) is downloaded, hashed
  and compared with the source's record.
- **Point in time**: the replica bucket keeps versioning and noncurrent versions as long as the
  dataset's retention policy says; with `min_versions` > 1, keys whose replica history is shorter
  than required are reported.
- **ML recovery points** (model-artifacts datasets): for every model version's manifest, its
  whole dependency set - artifact, training snapshot, feature snapshot - exists in the standby
  region and matches the recorded SHA-256: "could we serve and retrain this exact model there?"

Keys under the reserved prefix `_mldr/` (canaries) are ignored. Memory grows with the
differences, not with the bucket.

The package, by job: `model` (options, findings, results), `compare` (pure comparison),
`reads` (HEAD, hashed GET, default encryption), `run` (the compare pass and `verify`),
`recovery_points` (restore test, point in time, ML recovery points), `present` (metrics, alert
lines, HTML). The names callers use are re-exported here.
"""

from __future__ import annotations

from mldr.checks.verification.compare import (
    Sampler,
    StoredChecksum,
    VersionEntry,
    checksum_verdict,
    classify,
    is_content_etag,
    lifecycle_problems,
    listing_verdict,
    required_versions,
    stored_verdict,
)
from mldr.checks.verification.model import (
    RESERVED_PREFIX,
    Basis,
    DatasetVerification,
    Difference,
    Finding,
    KeyFinding,
    Mode,
    RecoveryPointCheck,
    RefCheck,
    RefState,
    RestoreResult,
    RetentionResult,
    VerificationReport,
    VerifyOptions,
)
from mldr.checks.verification.present import breach_lines, render_html, verification_metrics
from mldr.checks.verification.run import verify, verify_dataset

__all__ = [
    "RESERVED_PREFIX",
    "Basis",
    "DatasetVerification",
    "Difference",
    "Finding",
    "KeyFinding",
    "Mode",
    "RecoveryPointCheck",
    "RefCheck",
    "RefState",
    "RestoreResult",
    "RetentionResult",
    "Sampler",
    "StoredChecksum",
    "VerificationReport",
    "VerifyOptions",
    "VersionEntry",
    "breach_lines",
    "checksum_verdict",
    "classify",
    "is_content_etag",
    "lifecycle_problems",
    "listing_verdict",
    "render_html",
    "required_versions",
    "stored_verdict",
    "verification_metrics",
    "verify",
    "verify_dataset",
]
