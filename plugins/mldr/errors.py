"""One exception tree for mldr.

Every error a user can see derives from `MldrError` and carries a message that says what is
wrong and what to do. AWS errors are translated at the boundary (`mldr.cloud.aws.errors`) with the resource
they concern, so a failed runbook step names the bucket, table or region that failed.
"""

from __future__ import annotations


class MldrError(Exception):
    """Root of every error mldr raises on purpose."""

    #: Exit code the CLI uses for this error.
    exit_code: int = 1
    #: Set when whoever raised it already paged on-call with the details: Airflow's failure
    #: notifier (`mldr.airflow.alerts`) then does not page a second time.
    alert_sent: bool = False


class ConfigurationError(MldrError):
    """The user's input (topology, params, flags) is invalid. Nothing was changed."""

    exit_code = 2


class MissingExtra(ConfigurationError):
    """A command needs an optional part of mldr that is not installed (`pip install 'mldr[...]'`)."""


class TopologyError(ConfigurationError):
    """The topology document is malformed; `problems` lists every problem by field path."""

    def __init__(self, problems: list[str], *, source: str = "topology") -> None:
        self.problems = problems
        self.source = source
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{source} is invalid ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{listing}"
        )


class TopologyNotFound(ConfigurationError):
    """No topology document could be located."""


class UnknownRegion(ConfigurationError):
    def __init__(self, region: str, known: list[str]) -> None:
        self.region = region
        super().__init__(f"unknown region {region!r}: this topology has {', '.join(known)}")


class UnknownDataset(ConfigurationError):
    def __init__(self, dataset: str, known: list[str]) -> None:
        self.dataset = dataset
        super().__init__(f"unknown dataset {dataset!r}: this topology has {', '.join(known)}")


class AwsError(MldrError):
    """An AWS call failed; `resource` names what it concerned (bucket, table, region...)."""

    def __init__(self, message: str, *, resource: str, region: str | None = None) -> None:
        self.resource = resource
        self.region = region
        where = f" in {region}" if region else ""
        super().__init__(f"{resource}{where}: {message}")


class RegionUnreachable(AwsError):
    """A region's endpoint did not answer in time (outage, network, stopped sandbox region)."""


class SandboxError(MldrError):
    """The local sandbox could not be started, inspected or changed."""


class SandboxInputError(SandboxError, ConfigurationError):
    """A sandbox setting or fault given is invalid (exit 2); nothing was started or changed."""


class CheckFailed(MldrError):
    """A read-only check found a problem (verification mismatch, replication lag over RPO)."""


class ReplicationLagExceeded(CheckFailed):
    pass


class VerificationFailed(CheckFailed):
    pass


class FailoverPreconditionFailed(MldrError):
    """A runbook's preflight refused to go on; nothing was changed."""


class LeaseHeld(FailoverPreconditionFailed):
    """Another operation holds the DR lease."""


class ApprovalRequired(FailoverPreconditionFailed):
    """The operation needs a human's approval and has none; nothing was changed."""


class FencingConflict(MldrError):
    """A compare-and-set on the fencing token lost to a concurrent writer."""


class StaleRecord(FencingConflict):
    """A record was saved by another writer since this one read it (another run of the same
    operation): the save is refused instead of overwriting that run's progress."""


class WriteFenced(MldrError):
    """A write was attempted in a region whose buckets are fenced."""


class SourceChanged(MldrError):
    """A resync's source no longer holds what was listed: written again while the resync ran."""


class ActiveRegionChanged(MldrError):
    """The active region changed while a run was writing: its outputs would straddle two regions."""


# --- runbooks ---------------------------------------------------------------------------------


class AlreadyDone(MldrError):
    """Nothing to do: the target is already active. Not an error for the caller (exit 0)."""

    exit_code = 0


class SimulatedCrash(MldrError):
    """Raised after a step when MLDR_CRASH_AFTER_STEP names it (tests and drills only)."""


# --- the drill --------------------------------------------------------------------------------


class DrillInProgress(LeaseHeld):
    """Another process is running a drill against this topology right now."""


class DrillFailed(MldrError):
    """The drill ran and its verdict is fail: an objective was missed."""


class FaultInjectionUnavailable(ConfigurationError):
    """This environment has no fault injector configured for the scenario."""


# --- the example ML workload (mldr.ml) --------------------------------------------------------


class RegistryError(MldrError):
    """A registry document is missing, malformed, or does not match what references it."""


class ArtifactChecksumMismatch(VerificationFailed):
    """Downloaded bytes do not hash to what the registry recorded: corrupted or tampered with."""


class ModelBelowThreshold(CheckFailed):
    """The evaluated model is not good enough to register or serve."""


class RolloutNotConfirmed(MldrError):
    """CURRENT was written but the region's inference servers did not report the new version."""


# --- What a cloud call failed on, precisely: raised by `mldr.cloud` implementations (the AWS one
# translates in `mldr.cloud.aws.errors`), so callers branch on these types, never on a provider's
# error codes. Each is an `AwsError`: existing `except AwsError` handlers still see them.


class NotFound(AwsError):
    """The bucket, key, version, setting (policy, replication, encryption, lifecycle) or record
    asked for does not exist."""


class AccessDenied(AwsError):
    """The credentials may not do this here - or a failover's write fence refuses it."""


class PreconditionFailed(AwsError):
    """A conditional write lost: the object or record is no longer in the state the write was
    made against (an ETag, a version, a compare-and-set). Nothing was written."""


class AlreadyExists(AwsError):
    """What the call would create already exists."""
