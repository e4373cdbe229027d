"""The inference image's entrypoint: the sandbox's inference server, configured as ECS runs it.

`docker/inference.Dockerfile` runs `python -m mldr.sandbox.inference_container`. The app is
`mldr.sandbox.inference.create_app`, exactly what the sandbox serves in each region; only the
wiring differs. In the sandbox the manager passes flags and a socket on 127.0.0.1, and S3 is a
moto server with test keys. In ECS the task definition (infra/components/regional_inference.py)
passes environment variables, the load balancer reaches the task on its VPC address (so it
listens on 0.0.0.0), and S3 is AWS's, with the task role's credentials (the default chain).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mldr.ml.registry import DEFAULT_MODEL_NAME

#: The variables infra's task definition sets (tests/unit/test_inference_image.py checks both agree).
REGION = "MLDR_REGION"
MODEL_BUCKET = "MLDR_MODEL_BUCKET"
MODEL_PREFIX = "MLDR_MODEL_PREFIX"
PORT = "PORT"
#: Optional: another model name, and an S3 endpoint (a local moto server, to try the image).
MODEL_NAME = "MLDR_MODEL_NAME"
S3_ENDPOINT = "MLDR_S3_ENDPOINT"
#: Inside a container, "every interface" is the container's own network namespace.
LISTEN_HOST = "0.0.0.0"


class ContainerConfigError(ValueError):
    """The container's environment is incomplete or wrong; the message says what to set."""


@dataclass(frozen=True)
class ContainerSettings:
    region: str
    bucket: str
    port: int
    model_name: str
    s3_endpoint: str | None


def settings_from_env(env: Mapping[str, str]) -> ContainerSettings:
    """The server's settings from the task's environment, or one error listing every problem."""
    problems = [f"{name} is not set" for name in (REGION, MODEL_BUCKET) if not env.get(name)]
    raw_port = env.get(PORT, "8080")
    port = int(raw_port) if raw_port.isdigit() else 0
    if not 1 <= port <= 65535:
        problems.append(f"{PORT}={raw_port!r} is not a port number (1-65535)")
    if env.get(MODEL_PREFIX):
        # The model registry keeps models under `models/<name>/` at the bucket's root.
        problems.append(
            f"{MODEL_PREFIX}={env[MODEL_PREFIX]!r}: the server reads models/<name>/ at the bucket's root; "
            "give the model_artifacts dataset no prefix"
        )
    if problems:
        raise ContainerConfigError(
            "the inference container cannot start: "
            + "; ".join(problems)
            + " (infra/components/regional_inference.py sets these in the task definition)"
        )
    return ContainerSettings(
        region=env[REGION],
        bucket=env[MODEL_BUCKET],
        port=port,
        model_name=env.get(MODEL_NAME) or DEFAULT_MODEL_NAME,
        s3_endpoint=env.get(S3_ENDPOINT) or None,
    )


def s3_client(settings: ContainerSettings) -> Any:
    """AWS's S3 with the task role's credentials; a given endpoint (moto) uses the sandbox's client."""
    from mldr.sandbox.inference import S3_TIMEOUTS, make_client

    if settings.s3_endpoint:
        return make_client("s3", region=settings.region, endpoint_url=settings.s3_endpoint)
    import boto3

    from mldr.cloud.aws.clients import botocore_config

    return boto3.session.Session(region_name=settings.region).client(
        "s3", config=botocore_config(S3_TIMEOUTS)
    )


def main() -> None:
    try:
        settings = settings_from_env(os.environ)
    except ContainerConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    import logging

    import uvicorn

    from mldr.sandbox.inference import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(
        region=settings.region,
        s3_client=s3_client(settings),
        bucket=settings.bucket,
        model_name=settings.model_name,
    )
    uvicorn.run(app, host=LISTEN_HOST, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
