"""What a verification run reports: its options, the class of each differing key, and the results
of each dataset's checks (what `to_dict()` stores and `summary()` puts in XCom and alerts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mldr.errors import ConfigurationError
from mldr.topology import Dataset

RESERVED_PREFIX = "_mldr/"
#: Keys per class kept in compact summaries (XCom, alerts); the stored report has them all.
SUMMARY_KEYS = 100


class Finding(StrEnum):
    MISSING = "missing"
    EXTRA = "extra"
    MISMATCHED = "mismatched"
    PENDING = "pending"
    FAILED = "failed"


class Basis(StrEnum):
    """What a key's content was compared on."""

    ETAG = "etag"  # the listings' ETags, both MD5 of the content
    SHA256 = "sha256"  # the stored additional checksums (HEAD)
    CRC64NVME = "crc64nvme"  # the stored CRC64NVME (HEAD), where there is no comparable SHA-256
    DOWNLOAD = "download"  # no usable stored checksum: both sides downloaded and hashed
    SIZE = "size"  # sizes differ: content cannot be equal
    NOT_COMPARED = "not_compared"  # sampled mode: key set and size only


class Difference(StrEnum):
    ONLY_SOURCE = "only_source"
    ONLY_TARGET = "only_target"
    CONTENT = "content"


class Mode(StrEnum):
    FULL = "full"  # every key's content compared
    SAMPLED = "sampled"  # key set and sizes for all; checksum requests only for a sample


@dataclass(frozen=True)
class VerifyOptions:
    sample: int = 10
    mode: Mode = Mode.FULL
    #: pending older than this is not "pending" but missing/mismatched; None: the dataset's RPO
    pending_threshold_seconds: float | None = None
    #: list requests in flight per side; None: by where the endpoints are
    #: (see `listing.partition_concurrency`)
    workers: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sample, bool) or not isinstance(self.sample, int) or self.sample < 0:
            raise ConfigurationError(f"sample size must be an integer >= 0, got {self.sample!r}")
        if self.pending_threshold_seconds is not None and self.pending_threshold_seconds <= 0:
            raise ConfigurationError(
                f"pending threshold must be a number of seconds > 0, got {self.pending_threshold_seconds!r}"
            )
        if self.workers is not None and self.workers < 1:
            raise ConfigurationError(f"workers must be at least 1, got {self.workers}")
        object.__setattr__(self, "mode", Mode(self.mode))

    def threshold(self, dataset: Dataset) -> float:
        return float(self.pending_threshold_seconds or dataset.rpo_seconds)


@dataclass(frozen=True)
class KeyFinding:
    key: str
    finding: Finding
    detail: str
    basis: Basis | None = None
    age_seconds: float | None = None
    size: int | None = None
    over_seconds: float | None = None  # how far past the threshold a stale pending key is

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "class": self.finding.value,
            "detail": self.detail,
            "basis": self.basis.value if self.basis else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "size": self.size,
            "over_seconds": None if self.over_seconds is None else round(self.over_seconds, 1),
        }


# --- pure comparison logic (unit-tested in tests/unit/test_verification_logic.py) ------------------


@dataclass(frozen=True)
class RestoreResult:
    sampled: list[str]
    verified: list[str]
    failures: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampled": len(self.sampled),
            "verified": len(self.verified),
            "keys": self.sampled,
            "failures": self.failures,
        }


@dataclass(frozen=True)
class RetentionResult:
    noncurrent_days: int
    min_versions: int
    problems: list[str]
    short_history: list[dict[str, Any]]
    history_checked: bool

    @property
    def ok(self) -> bool:
        return not self.problems and not self.short_history

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "policy": {"noncurrent_days": self.noncurrent_days, "min_versions": self.min_versions},
            "history_checked": self.history_checked,
            "problems": self.problems,
            "short_history": self.short_history,
        }


class RefState(StrEnum):
    OK = "ok"
    PENDING = "pending"
    MISSING = "missing"
    MISMATCHED = "mismatched"
    ERROR = "error"


@dataclass(frozen=True)
class RefCheck:
    role: str  # manifest | artifact | training_snapshot | feature_snapshot
    dataset: str
    key: str
    state: RefState
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "dataset": self.dataset,
            "key": self.key,
            "state": self.state.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RecoveryPointCheck:
    """Could we serve and retrain this exact model version in the standby region?"""

    model: str
    version: str
    objects: list[RefCheck]

    @property
    def state(self) -> str:
        states = {o.state for o in self.objects}
        if states <= {RefState.OK}:
            return "restorable"
        if states <= {RefState.OK, RefState.PENDING}:
            return "pending"
        return "broken"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "state": self.state,
            "restorable": self.state == "restorable",
            "objects": [o.to_dict() for o in self.objects],
        }


@dataclass(frozen=True)
class DatasetVerification:
    name: str
    kind: str
    source_region: str
    target_region: str
    source_bucket: str
    target_bucket: str
    prefix: str
    mode: Mode
    threshold_seconds: float
    objects_checked: int = 0
    bytes_checked: int = 0
    findings: list[KeyFinding] = field(default_factory=list)
    basis_counts: dict[str, int] = field(default_factory=dict)
    basis_keys: dict[str, list[str]] = field(default_factory=dict)
    changed_during_check: int = 0
    partitions: int = 0
    list_requests: int = 0
    restore: RestoreResult | None = None
    retention: RetentionResult | None = None
    recovery_points: list[RecoveryPointCheck] | None = None
    error: str | None = None
    seconds: float = 0.0

    def keys(self, finding: Finding) -> list[str]:
        return [f.key for f in self.findings if f.finding is finding]

    @property
    def ok(self) -> bool:
        breaking = {Finding.MISSING, Finding.EXTRA, Finding.MISMATCHED, Finding.FAILED}
        return (
            self.error is None
            and not any(f.finding in breaking for f in self.findings)
            and (self.restore is None or not self.restore.failures)
            and (self.retention is None or self.retention.ok)
            and all(rp.state != "broken" for rp in self.recovery_points or [])
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "kind": self.kind,
            "source_region": self.source_region,
            "target_region": self.target_region,
            "source_bucket": self.source_bucket,
            "target_bucket": self.target_bucket,
            "prefix": self.prefix,
            "mode": self.mode.value,
            "threshold_seconds": self.threshold_seconds,
            "objects_checked": self.objects_checked,
            "bytes_checked": self.bytes_checked,
            **{f.value: self.keys(f) for f in Finding},
            "findings": [f.to_dict() for f in self.findings],
            "basis": dict(self.basis_counts),
            # every key not listed here was compared on its ETag (or its size, when sizes differ)
            "basis_keys": {k: v for k, v in self.basis_keys.items() if v},
            "changed_during_check": self.changed_during_check,
            "partitions": self.partitions,
            "list_requests": self.list_requests,
            "restore": self.restore.to_dict() if self.restore else None,
            "retention": self.retention.to_dict() if self.retention else None,
            "recovery_points": None
            if self.recovery_points is None
            else [rp.to_dict() for rp in self.recovery_points],
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> dict[str, Any]:
        """A compact form for XCom and alerts: counts, and the first keys of each class."""
        doc = self.to_dict()
        out = {
            k: doc[k]
            for k in (
                "name",
                "ok",
                "objects_checked",
                "source_region",
                "target_region",
                "threshold_seconds",
                "error",
            )
        }
        for f in Finding:
            keys = doc[f.value]
            out[f.value] = keys[:SUMMARY_KEYS]
            out[f"{f.value}_count"] = len(keys)
        out["restore_failures"] = (doc["restore"] or {}).get("failures", [])[:SUMMARY_KEYS]
        out["retention_problems"] = (doc["retention"] or {}).get("problems", [])
        out["short_history_count"] = len((doc["retention"] or {}).get("short_history", []))
        out["broken_recovery_points"] = [
            f"{rp['model']}/{rp['version']}" for rp in doc["recovery_points"] or [] if rp["state"] == "broken"
        ]
        return out


@dataclass(frozen=True)
class VerificationReport:
    topology: str
    started_at: str
    finished_at: str
    datasets: list[DatasetVerification]

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "verification",
            "topology": self.topology,
            "ok": self.ok,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "datasets": [d.to_dict() for d in self.datasets],
        }
