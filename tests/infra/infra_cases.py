"""The stack configs the infra tests deploy under mocks, and what a deployment yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra_mocks import Deployment

from infra import config

#: Only what is required: the DNS name and the image. Everything else comes from config.DEFAULTS.
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mldr-inference:0.1.0"
DEFAULT_RAW: dict[str, Any] = {"dnsName": "inference.example.com", "image": IMAGE}

#: Warm standby, other regions, zone given by id, a prefix, Object Lock and a version floor.
WARM_RAW: dict[str, Any] = {
    "name": "mldr-warm",
    "primaryRegion": "eu-west-1",
    "secondaryRegion": "us-east-1",
    "primaryConnectionId": "mldr_aws_eu",
    "secondaryConnectionId": "mldr_aws_us",
    "route53ConnectionId": "mldr_aws_global",
    "dnsName": "predict.ml.example.org",
    "image": IMAGE,
    "hostedZoneId": "Z0WARMZONE",
    "healthCheckInterval": "10",
    "healthCheckFailureThreshold": "2",
    "healthPath": "/ready",
    "activeCapacity": "3",
    "standbyCapacity": "2",
    "rtoSeconds": "300",
    "rpoSeconds": "600",
    "airflowPrincipalArns": '["arn:aws:iam::123456789012:role/airflow-worker"]',
    "continuousBackupDays": "7",
    "datasets": [
        {"name": "features", "kind": "features", "rpoSeconds": 600, "prefix": "online/"},
        {
            "name": "models",
            "kind": "model_artifacts",
            "rpoSeconds": 300,
            "prefix": "registry/",
            "noncurrentDays": 180,
            "minVersions": 5,
            "objectLockDays": 30,
        },
    ],
}


@dataclass
class Deployed:
    label: str
    cfg: config.InfraConfig
    result: Deployment
