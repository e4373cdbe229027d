"""AWS failures leave `mldr.cloud.aws` as the precise `mldr.errors` type, naming the resource."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

from mldr.cloud.aws import lean_http
from mldr.cloud.aws.errors import aws_call, error_code
from mldr.cloud.aws.s3_signed import error_from
from mldr.errors import (
    AccessDenied,
    AlreadyExists,
    AwsError,
    MldrError,
    NotFound,
    PreconditionFailed,
    RegionUnreachable,
)


def client_error(code: str, status: int | None = None, message: str = "said AWS") -> ClientError:
    response: dict = {"Error": {"Code": code, "Message": message}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "Operation")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("NoSuchKey", 404, NotFound),
        ("NoSuchVersion", 404, NotFound),
        ("NoSuchBucket", 404, NotFound),
        ("404", 404, NotFound),  # HeadObject: no body, botocore reports the status
        ("NoSuchBucketPolicy", 404, NotFound),
        ("ReplicationConfigurationNotFoundError", 404, NotFound),
        ("ServerSideEncryptionConfigurationNotFoundError", 404, NotFound),
        ("NoSuchLifecycleConfiguration", 404, NotFound),
        ("ResourceNotFoundException", 400, NotFound),  # DynamoDB
        ("NoSuchHealthCheck", 404, NotFound),  # Route 53
        ("AccessDenied", 403, AccessDenied),
        ("403", 403, AccessDenied),
        ("AccessDeniedException", 400, AccessDenied),
        ("PreconditionFailed", 412, PreconditionFailed),
        ("ConditionalCheckFailedException", 400, PreconditionFailed),  # DynamoDB compare-and-set
        ("BucketAlreadyOwnedByYou", 409, AlreadyExists),
        ("HTTP404", 404, NotFound),  # an unknown code: the status decides
        ("HTTP412", 412, PreconditionFailed),
        ("InternalError", 500, AwsError),
        ("ValidationException", None, AwsError),
    ],
)
def test_aws_codes_become_precise_mldr_errors(code: str, status: int | None, kind: type[AwsError]) -> None:
    with pytest.raises(AwsError) as info, aws_call("bucket b", region="us-east-1"):
        raise client_error(code, status)
    assert type(info.value) is kind
    assert str(info.value) == f"bucket b in us-east-1: {code}: said AWS"
    assert (info.value.resource, info.value.region) == ("bucket b", "us-east-1")
    assert error_code(info.value) == code  # kept for mldr.cloud.aws's own finer decisions


@pytest.mark.parametrize(
    "exc",
    [EndpointConnectionError(endpoint_url="http://10.0.0.1"), lean_http.TransportError("refused")],
)
def test_a_region_that_does_not_answer_is_unreachable(exc: Exception) -> None:
    with (
        pytest.raises(RegionUnreachable, match=r"^table t in eu-west-1: no answer"),
        aws_call("table t", region="eu-west-1"),
    ):
        raise exc


def test_other_sdk_errors_are_aws_errors_and_mldr_errors_pass_through() -> None:
    with pytest.raises(AwsError, match="bucket b: Parameter validation failed") as info, aws_call("bucket b"):
        raise ParamValidationError(report="missing Key")
    assert type(info.value) is AwsError
    already = NotFound("gone", resource="key k")
    with pytest.raises(NotFound) as passed, aws_call("bucket b"):
        raise already
    assert passed.value is already
    with pytest.raises(KeyError), aws_call("bucket b"):  # a bug stays a bug
        raise KeyError("x")


def test_signed_path_error_answers_translate_like_botocore_ones() -> None:
    body = b"<Error><Code>PreconditionFailed</Code><Message>At least one failed</Message></Error>"
    failed = SimpleNamespace(status=412, reason="Precondition Failed", data=body)
    with (
        pytest.raises(PreconditionFailed, match="key k in us-west-2: PreconditionFailed: At least one"),
        aws_call("key k", region="us-west-2"),
    ):
        raise error_from(failed, "CopyObject")
    bodiless = SimpleNamespace(status=404, reason="Not Found", data=b"")
    with pytest.raises(NotFound, match="HTTP404: Not Found"), aws_call("key k", region="us-west-2"):
        raise error_from(bodiless, "HeadObject")


def test_every_translated_error_is_an_mldr_error() -> None:
    for kind in (NotFound, AccessDenied, PreconditionFailed, AlreadyExists, RegionUnreachable):
        assert issubclass(kind, AwsError) and issubclass(kind, MldrError)
