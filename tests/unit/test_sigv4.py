"""mldr's SigV4 signer must produce exactly what botocore's S3SigV4Auth produces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mldr.cloud.aws.s3_signed import encode
from mldr.cloud.aws.sigv4 import S3Signer

NOW = datetime(2026, 11, 29, 23, 59, 58, tzinfo=UTC)
KEY = "shards/shard-03/a b+c%d~é.json"

CASES = [
    ("GET", "http://127.0.0.1:45999/bucket?list-type=2&max-keys=1000&prefix=shards%2F", {}),
    ("GET", f"http://127.0.0.1:45999/bucket?continuation-token={encode('tok/+=')}&list-type=2", {}),
    ("HEAD", f"https://s3.eu-west-1.amazonaws.com/bucket/{encode(KEY, safe='-_.~/')}", {}),
    (
        "DELETE",
        f"https://s3.eu-west-1.amazonaws.com:443/bucket/{encode(KEY, safe='-_.~/')}?versionId=3%2Fx",
        {},
    ),
    (
        "PUT",
        f"http://localhost:9000/dst/{encode(KEY, safe='-_.~/')}",
        {
            "x-amz-copy-source": f"/src/{encode(KEY, safe='-_.~/')}?versionId=v1",
            "x-amz-copy-source-if-match": '"0cc175b9c0f1b6a831c399e269772661"',
        },
    ),
]


def botocore_headers(
    credentials: Credentials, region: str, method: str, url: str, headers: dict[str, str]
) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    S3SigV4Auth(credentials, "s3", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "session/token+="])
@pytest.mark.parametrize(("method", "url", "headers"), CASES)
def test_signature_and_headers_match_botocore(
    monkeypatch: pytest.MonkeyPatch, method: str, url: str, headers: dict[str, str], token: str | None
) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    expected = botocore_headers(credentials, "eu-west-1", method, url, headers)
    assert S3Signer(credentials, "eu-west-1").headers(method, url, headers, now=NOW) == expected


def test_the_signing_key_follows_the_date_and_rotated_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # the key is cached per day and secret: a new day or a refreshed secret must not reuse it
    signer_credentials = Credentials("AKID", "first-secret")
    signer = S3Signer(signer_credentials, "us-east-1")
    url = "http://127.0.0.1:1/b?list-type=2"
    for now, secret in (
        (NOW, "first-secret"),
        (NOW.replace(day=30), "first-secret"),
        (NOW.replace(day=30), "second"),
    ):
        signer_credentials.secret_key = secret
        monkeypatch.setattr("botocore.auth.get_current_datetime", lambda now=now: now.replace(tzinfo=None))
        expected = botocore_headers(Credentials("AKID", secret), "us-east-1", "GET", url, {})
        assert signer.headers("GET", url, now=now) == expected
