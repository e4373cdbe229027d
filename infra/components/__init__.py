"""The program's building blocks, one concern each."""

from infra.components.continuous_backup import ContinuousBackup, ContinuousBackupArgs
from infra.components.control_plane import ControlPlane, ControlPlaneArgs, RunbookTargets
from infra.components.failover_dns import FailoverDns, FailoverDnsArgs, FailoverEndpoint, FailoverRole
from infra.components.naming import short_region
from infra.components.network import RegionalNetwork, RegionalNetworkArgs
from infra.components.regional_inference import RegionalInference, RegionalInferenceArgs
from infra.components.replicated_bucket import ReplicatedBucket, ReplicatedBucketArgs
from infra.components.secure_bucket import SecureBucket, SecureBucketArgs

__all__ = [
    "ContinuousBackup",
    "ContinuousBackupArgs",
    "ControlPlane",
    "ControlPlaneArgs",
    "FailoverDns",
    "FailoverDnsArgs",
    "FailoverEndpoint",
    "FailoverRole",
    "RegionalInference",
    "RegionalInferenceArgs",
    "RegionalNetwork",
    "RegionalNetworkArgs",
    "ReplicatedBucket",
    "ReplicatedBucketArgs",
    "RunbookTargets",
    "SecureBucket",
    "SecureBucketArgs",
    "short_region",
]
