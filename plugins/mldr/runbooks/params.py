"""What an operator asks of a failover, failback or restore: one typed value, validated once.

The CLI, the DAG tasks and the drill build an `OperationParams`; the engine stores it in the
operation's record as JSON and parses it back when the record is loaded, so steps read
`ctx.params.mode`, never a string key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from mldr.errors import ConfigurationError

MIN_REASON = 10
KINDS = ("failover", "failback", "restore", "rollback")


class Mode(StrEnum):
    PLANNED = "planned"
    UNPLANNED = "unplanned"


#: The reason is stored in the lease, the operation record and every step's audit event: a
#: sentence or a ticket, not a document (DynamoDB items hold at most 400 KB).
MAX_REASON = 1000


def validate_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < MIN_REASON:
        raise ConfigurationError(
            f"reason must say why, in at least {MIN_REASON} characters (got {len(text)}): "
            "it goes into the audit record"
        )
    if len(text) > MAX_REASON:
        raise ConfigurationError(
            f"reason must be at most {MAX_REASON} characters (got {len(text)}): it is stored with every "
            "audit event; link a ticket or document for the details"
        )
    return text


def validate_mode(mode: str) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        raise ConfigurationError(f"mode must be planned or unplanned, not {mode!r}") from None


@dataclass(frozen=True)
class RestoreTarget:
    """What a point-in-time restore brings back: a dataset (a prefix of it) as it was at `at`."""

    dataset: str
    at: float  # epoch seconds
    prefix: str = ""
    into_prefix: str | None = None  # write the old state beside the live data, not over it


@dataclass(frozen=True)
class RollbackTarget:
    """What a model rollback serves again: a version, or the one served at `at`."""

    model: str
    version: str | None = None
    at: float | None = None


@dataclass(frozen=True)
class OperationParams:
    kind: str  # failover | failback | restore: which runbook runs
    target_region: str
    mode: Mode
    reason: str
    requested_by: str
    dry_run: bool = False
    force: bool = False
    require_approval: bool = True
    drain_timeout_seconds: float = 300.0
    restore: RestoreTarget | None = None  # a restore's what and when (None for the others)
    rollback: RollbackTarget | None = None  # a model rollback's model and version or time

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigurationError(f"unknown runbook {self.kind!r}: {', '.join(KINDS)}")
        if (self.kind == "restore") != (self.restore is not None):
            raise ConfigurationError(
                "a restore, and only a restore, names a dataset and a time to restore to"
            )
        if not isinstance(self.mode, Mode):
            raise ConfigurationError(f"mode must be a Mode, not {self.mode!r}")
        validate_reason(self.reason)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = self.mode.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationParams:
        restore, rollback = data.get("restore"), data.get("rollback")
        return cls(
            **{
                **data,
                "mode": validate_mode(str(data["mode"])),
                "restore": RestoreTarget(**restore) if restore else None,
                "rollback": RollbackTarget(**rollback) if rollback else None,
            }
        )
