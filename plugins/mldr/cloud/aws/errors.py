"""AWS failures become `mldr.errors`, here and nowhere else.

Every call `mldr.cloud.aws` makes - through a botocore client or the signed fast path - runs
inside `aws_call(resource, region=...)`, which turns what AWS raised into the precise
`mldr.errors` type: `RegionUnreachable` when the region did not answer, `NotFound`,
`AccessDenied`, `PreconditionFailed` or `AlreadyExists` when AWS said so, else `AwsError`. The
error names the resource and region it concerns and keeps the AWS error as its `__cause__`, so
`error_code` can still tell, inside `mldr.cloud.aws` only, which "not found" it was (a bucket
without a policy is not a missing bucket).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from mldr.cloud.aws.lean_http import TransportError
from mldr.errors import (
    AccessDenied,
    AlreadyExists,
    AwsError,
    NotFound,
    PreconditionFailed,
    RegionUnreachable,
)

__all__ = ["aws_call", "error_code", "translate", "unreachable"]

#: Raised when a region's endpoint does not answer: botocore's, and the signed path's transport.
UNREACHABLE: tuple[type[BaseException], ...] = (
    ConnectTimeoutError,
    ReadTimeoutError,
    EndpointConnectionError,
    ConnectionClosedError,
    TransportError,
)

_TRANSLATED: tuple[type[BaseException], ...] = (*UNREACHABLE, ClientError, BotoCoreError)

# Codes across the services mldr calls (S3, DynamoDB, Route 53, CloudWatch, SNS, ECS, Auto
# Scaling). HEAD answers carry no body: botocore then reports the bare status ("404").
_BY_CODE: dict[str, type[AwsError]] = {
    **dict.fromkeys(
        (
            "404",
            "NotFound",
            "NoSuchKey",
            "NoSuchVersion",
            "NoSuchBucket",
            "NoSuchBucketPolicy",
            "NoSuchLifecycleConfiguration",
            "NoSuchUpload",
            "ReplicationConfigurationNotFoundError",
            "ServerSideEncryptionConfigurationNotFoundError",
            "ObjectLockConfigurationNotFoundError",
            "ResourceNotFoundException",
            "ResourceNotFound",
            "NoSuchHostedZone",
            "NoSuchHealthCheck",
            "ServiceNotFoundException",
            "ClusterNotFoundException",
        ),
        NotFound,
    ),
    **dict.fromkeys(
        (
            "403",
            "AccessDenied",
            "AccessDeniedException",
            "AuthorizationError",
            "AllAccessDisabled",
            "Forbidden",
        ),
        AccessDenied,
    ),
    **dict.fromkeys(
        (
            "412",
            "PreconditionFailed",
            "ConditionalCheckFailedException",
            # S3: another conditional write to the same key was in flight; it won.
            "ConditionalRequestConflict",
        ),
        PreconditionFailed,
    ),
    **dict.fromkeys(
        (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
            "ResourceInUseException",
            "HealthCheckAlreadyExists",
            "AlreadyExistsException",
        ),
        AlreadyExists,
    ),
}
#: Calls answered without a body (HEAD): the IAM action a 403 to them means was denied.
_BODILESS = {
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject (s3:GetObjectVersion for a given version)",
}
# When the code says nothing precise (a signed answer without a body: "HTTP404").
_BY_STATUS: dict[int, type[AwsError]] = {404: NotFound, 403: AccessDenied, 412: PreconditionFailed}


def unreachable(exc: BaseException, *, resource: str, region: str | None) -> RegionUnreachable:
    return RegionUnreachable(
        # No "fail over" hint here: this also fails for the control-state table and Route 53,
        # which a failover needs as well. The runbooks add it where a data region is silent.
        f"no answer ({type(exc).__name__}); the region may be down - check its health",
        resource=resource,
        region=region,
    )


def translate(exc: BaseException, *, resource: str, region: str | None = None) -> BaseException:
    """The `mldr.errors` error for what an AWS call raised; anything else is returned as is
    (an `MldrError` raised inside, a bug)."""
    if isinstance(exc, UNREACHABLE):
        return unreachable(exc, resource=resource, region=region)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Error"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        kind = _BY_CODE.get(code) or _BY_STATUS.get(status if isinstance(status, int) else 0, AwsError)
        message = error.get("Message") or str(exc)
        if kind is AccessDenied and exc.operation_name in _BODILESS:
            # A HEAD answer has no body to name what was denied: name the permission it needs.
            message += f" ({exc.operation_name} needs {_BODILESS[exc.operation_name]})"
        return kind(f"{code}: {message}", resource=resource, region=region)
    if isinstance(exc, BotoCoreError):
        return AwsError(str(exc), resource=resource, region=region)
    return exc


@contextmanager
def aws_call(resource: str, *, region: str | None = None) -> Iterator[None]:
    """Run AWS calls; what they raise leaves as `mldr.errors`, naming `resource` and `region`."""
    try:
        yield
    except _TRANSLATED as exc:
        raise translate(exc, resource=resource, region=region) from exc


def error_code(exc: BaseException) -> str | None:
    """The AWS error code behind a translated error (or a raw ClientError), if any.

    For `mldr.cloud.aws` only: code outside it branches on the `mldr.errors` type.
    """
    cause = exc.__cause__ if isinstance(exc, AwsError) else exc
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code"))
    return None
