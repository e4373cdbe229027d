"""The pure logic of backup verification and replication lag: no sandbox, no network."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from botocore.config import Config

from mldr.checks.listing import ListedObject, Page, discover_partitions, merge
from mldr.checks.replication import DatasetLag, LagOptions, summarize_backlog
from mldr.checks.replication_status import BacklogItem, ReplicationState
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
from mldr.checks.verification.model import Basis, Difference, Finding, VerifyOptions
from mldr.checks.verification.present import breach_lines
from mldr.cloud.aws.clients import Timeouts
from mldr.cloud.aws.s3 import head_from_answer
from mldr.cloud.aws.s3_listing import BucketLister, parse_page, parse_tree
from mldr.cloud.objects import ObjectHead
from mldr.errors import ConfigurationError
from mldr.topology import Dataset

MD5_A = "0cc175b9c0f1b6a831c399e269772661"
MD5_B = "92eb5ffee6ae2fec3ad71c777531578f"


def obj(
    key: str, size: int = 1, etag: str = MD5_A, modified: str = "2026-01-01T00:00:00.000Z"
) -> ListedObject:
    return ListedObject(key=key, size=size, etag=etag, modified=modified)


def dataset(**overrides: Any) -> Dataset:
    doc: dict[str, Any] = {
        "name": "training-data",
        "kind": "training_data",
        "buckets": {"us-east-1": "src-bucket", "us-west-2": "dst-bucket"},
        "prefix": "data/",
        "rpo_seconds": 60,
        "replication": {
            region: {
                "kms_key_arn": f"arn:aws:kms:{region}:123456789012:key/training-data",
                "role_arn": "arn:aws:iam::123456789012:role/training-data-replication",
                "rule_id": f"training-data-to-{other}",
            }
            for region, other in (("us-east-1", "us-west-2"), ("us-west-2", "us-east-1"))
        },
    }
    doc.update(overrides)
    return Dataset.model_validate(doc)


# --- what content is compared on ------------------------------------------------------------


def test_only_single_part_md5_etags_are_content_hashes() -> None:
    assert is_content_etag(MD5_A)
    assert is_content_etag(f'"{MD5_A.upper()}"')
    assert not is_content_etag(f"{MD5_A}-3")  # multipart: MD5 of the part MD5s
    assert not is_content_etag("")


def test_listing_verdict_decides_by_size_then_etag_and_defers_the_rest() -> None:
    assert listing_verdict(obj("k", 1), obj("k", 2), kms=False) == (Basis.SIZE, False)
    assert listing_verdict(obj("k"), obj("k"), kms=False) == (Basis.ETAG, True)
    # a same-size edit: ETags differ; confirmed by HEAD (the object might be SSE-KMS after all)
    assert listing_verdict(obj("k", etag=MD5_A), obj("k", etag=MD5_B), kms=False) == (Basis.ETAG, None)
    assert listing_verdict(obj("k", etag=f"{MD5_A}-2"), obj("k", etag=f"{MD5_A}-2"), kms=False) == (
        Basis.SHA256,
        None,
    )
    # SSE-KMS bucket: equal-looking ETags prove nothing
    assert listing_verdict(obj("k"), obj("k"), kms=True) == (Basis.SHA256, None)


def head(
    sha: str | None, *, etag: str = MD5_A, kind: str | None = None, sse: str | None = None
) -> ObjectHead:
    """What the S3 store makes of a HeadObject answer with these fields."""
    out: dict[str, Any] = {"ETag": f'"{etag}"', "ContentLength": 3}
    if sha:
        out["ChecksumSHA256"] = sha
    if kind:
        out["ChecksumType"] = kind
    if sse:
        out["ServerSideEncryption"] = sse
    return head_from_answer("k", out)


def test_stored_checksums_compare_only_like_with_like() -> None:
    full_a = StoredChecksum.from_head(head("AAAA"))
    full_b = StoredChecksum.from_head(head("BBBB"))
    assert checksum_verdict(full_a, full_a) is True
    assert checksum_verdict(full_a, full_b) is False
    composite = StoredChecksum.from_head(head("AAAA-2", etag=f"{MD5_A}-2"))
    assert composite.composite and composite.digest == "AAAA"
    # the same digest with and without the part-count suffix: the same composite checksum
    untyped = StoredChecksum.from_head(head("AAAA", etag=f"{MD5_A}-2"))
    assert untyped.composite, "a multipart ETag means a composite SHA-256"
    assert checksum_verdict(untyped, composite) is True
    # a whole-object checksum and a composite one differ for the same bytes: undecidable
    assert checksum_verdict(full_b, composite) is None
    assert checksum_verdict(StoredChecksum.from_head(head(None)), full_a) is None
    assert StoredChecksum.from_head(head("AAAA", sse="aws:kms")).kms


def test_crc64nvme_settles_what_sha256_cannot_and_says_so() -> None:
    """A KMS object written with CRC64NVME only, or a multipart upload against a single-part copy
    (composite vs whole-object SHA-256): the whole-object CRC64NVME decides, and is named."""

    def stored(sha: str | None, crc: str | None, etag: str = MD5_A) -> StoredChecksum:
        answer: dict[str, Any] = {"ETag": f'"{etag}"', "ContentLength": 3, "ServerSideEncryption": "aws:kms"}
        if sha:
            answer["ChecksumSHA256"] = sha
        if crc:
            answer["ChecksumCRC64NVME"] = crc
        return StoredChecksum.from_head(head_from_answer("k", answer))

    crc_only = stored(None, "Z2l2ZW4=")
    assert stored_verdict(crc_only, stored(None, "Z2l2ZW4=")) == (Basis.CRC64NVME, True)
    assert stored_verdict(crc_only, stored(None, "b3RoZXI=")) == (Basis.CRC64NVME, False)
    composite = stored("AAAA-2", "Z2l2ZW4=", etag=f"{MD5_A}-2")
    assert stored_verdict(composite, stored("BBBB", "Z2l2ZW4=")) == (Basis.CRC64NVME, True)
    assert stored_verdict(stored("AAAA", "Z2l2ZW4="), stored("AAAA", "b3RoZXI=")) == (Basis.SHA256, True)
    assert stored_verdict(crc_only, stored("AAAA", None)) is None  # nothing comparable: download


@pytest.mark.parametrize(
    ("diff", "state", "age", "expected"),
    [
        (Difference.ONLY_SOURCE, ReplicationState.PENDING, 10.0, Finding.PENDING),
        (Difference.ONLY_SOURCE, ReplicationState.PENDING, 61.0, Finding.MISSING),
        (Difference.ONLY_SOURCE, ReplicationState.COMPLETED, 1.0, Finding.MISSING),
        (Difference.ONLY_SOURCE, ReplicationState.UNKNOWN, 1.0, Finding.MISSING),
        (Difference.ONLY_SOURCE, ReplicationState.FAILED, 1.0, Finding.FAILED),
        (Difference.CONTENT, ReplicationState.PENDING, 5.0, Finding.PENDING),
        (Difference.CONTENT, ReplicationState.PENDING, 500.0, Finding.MISMATCHED),
        (Difference.CONTENT, ReplicationState.COMPLETED, 5.0, Finding.MISMATCHED),
        (Difference.ONLY_TARGET, ReplicationState.PENDING, None, Finding.PENDING),  # a delete on its way
        (Difference.ONLY_TARGET, ReplicationState.UNKNOWN, None, Finding.EXTRA),
        (Difference.ONLY_TARGET, ReplicationState.FAILED, None, Finding.FAILED),
    ],
)
def test_classify(diff: Difference, state: ReplicationState, age: float | None, expected: Finding) -> None:
    assert classify(diff, state, age, threshold=60.0) is expected


# --- point in time ----------------------------------------------------------------------------


def test_lifecycle_rules_shorter_than_the_policy_are_problems() -> None:
    ds = dataset(retention={"noncurrent_days": 30, "min_versions": 3})
    rules = [
        {
            "ID": "short",
            "Status": "Enabled",
            "Filter": {"Prefix": "data/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
        },
        {
            "ID": "few",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 90, "NewerNoncurrentVersions": 1},
        },
        {
            "ID": "other-prefix",
            "Status": "Enabled",
            "Filter": {"Prefix": "logs/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
        {"ID": "disabled", "Status": "Disabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {
            "ID": "fine",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "data/x"}},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        },
    ]
    problems = lifecycle_problems(rules, ds, "dst-bucket")
    assert len(problems) == 2
    assert "'short'" in problems[0] and "after 7 days" in problems[0] and "30 days" in problems[0]
    assert "'few'" in problems[1] and "3 versions" in problems[1]


def test_infras_scratch_rule_is_no_retention_problem_for_a_whole_bucket_dataset() -> None:
    """infra/ expires `_mldr/` (canaries, drill data) after a day in every dataset bucket;
    verification ignores those keys, so that rule breaks no retention policy - a rule on the
    whole bucket still does."""
    ds = dataset(prefix="", retention={"noncurrent_days": 30, "min_versions": 1})
    scratch = {
        "ID": "mldr-scratch",
        "Status": "Enabled",
        "Filter": {"Prefix": "_mldr/"},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }
    assert lifecycle_problems([scratch], ds, "b") == []
    whole = {**scratch, "ID": "whole", "Filter": {"Prefix": ""}}
    assert len(lifecycle_problems([scratch, whole], ds, "b")) == 1


def test_required_versions_counts_only_what_the_source_still_keeps() -> None:
    now = time.time()
    day = 86400
    history = [
        VersionEntry(now - 1 * day, False),
        VersionEntry(now - 2 * day, False),
        VersionEntry(now - 50 * day, False),
        VersionEntry(now - 60 * day, False),
    ]
    # v0 current; v1 noncurrent for 1 day; v2 noncurrent for 2 days; v3 for 50 days (expired)
    assert required_versions(history, min_versions=5, noncurrent_days=30, now=now) == 3
    assert required_versions(history, min_versions=2, noncurrent_days=30, now=now) == 2
    assert required_versions(history[:1], min_versions=3, noncurrent_days=30, now=now) == 1
    deleted = [VersionEntry(now, True), VersionEntry(now - day, False)]
    assert required_versions(deleted, min_versions=2, noncurrent_days=30, now=now) == 1


# --- the restore sample -----------------------------------------------------------------------


def test_sampler_always_includes_the_newest_objects() -> None:
    sampler = Sampler(6, seed=1)
    for i in range(1000):
        sampler.offer(f"k{i:04d}", float(i))
    keys = sampler.keys()
    assert len(keys) == 6 and len(set(keys)) == 6
    assert keys[:3] == ["k0999", "k0998", "k0997"]
    assert Sampler(0).keys() == []
    small = Sampler(10)
    small.offer("only", 1.0)
    assert small.keys() == ["only"]


# --- listing ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failing_listing_fails_its_consumer_instead_of_hanging() -> None:
    from mldr.checks.listing import _Prefetch
    from mldr.errors import AwsError

    def pages(error: Exception) -> Any:
        yield 1
        raise error

    with pytest.raises(AwsError, match="SlowDown"):
        list(_Prefetch(pages(AwsError("SlowDown", resource="s3://b"))))
    buggy = _Prefetch(pages(KeyError("bug")))  # a bug, not an AWS error: logged by the thread
    with pytest.raises(RuntimeError, match="stopped unexpectedly"):
        list(buggy)
    buggy._thread.join(5)
    assert list(_Prefetch(iter(range(5)), depth=1)) == [0, 1, 2, 3, 4]


def test_merge_pairs_keys_from_two_sorted_streams() -> None:
    left = [obj("a"), obj("b"), obj("d")]
    right = [obj("b"), obj("c"), obj("d"), obj("e")]
    pairs = [(a.key if a else None, b.key if b else None) for a, b in merge(iter(left), iter(right))]
    assert pairs == [("a", None), ("b", "b"), (None, "c"), ("d", "d"), (None, "e")]
    assert list(merge(iter([]), iter([]))) == []


PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>data%2F</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextContinuationToken>tok+en/=</NextContinuationToken>
<Contents><Key>data/a+b%2Bc%25.txt</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified>
<ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><ChecksumAlgorithm>SHA256</ChecksumAlgorithm>
<Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
<CommonPrefixes><Prefix>data%2Fsub%2F</Prefix></CommonPrefixes>
</ListBucketResult>"""


def test_parse_page_decodes_url_encoded_keys_like_botocore() -> None:
    page = parse_page(PAGE)
    assert page.truncated and page.next_token == "tok+en/="
    [o] = page.objects
    assert o.key == "data/a b+c%.txt"  # '+' is a space, %2B a plus, as botocore decodes
    assert (o.size, o.etag, o.checksum_algorithm) == (12, MD5_A, "SHA256")
    assert o.modified == "2026-01-02T03:04:05.000Z" and o.last_modified == 1767323045.0
    assert page.common_prefixes == ["data/sub/"]


FLAT_PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>
<NextContinuationToken>a&amp;b</NextContinuationToken><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>
<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>x/1+%26+%3Cy%3E</Key>
<LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag>
<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType><Size>12</Size>
<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>x/2</Key><LastModified>2026-01-02T03:04:06.000Z
</LastModified><ETag>"92eb5ffee6ae2fec3ad71c777531578f-2"</ETag><Size>0</Size><Owner><ID>o</ID></Owner>
</Contents><Contents><Key>x/3&amp;4</Key><LastModified>2026-01-02T03:04:07.000Z</LastModified>
<ETag>&quot;e&quot;</ETag><Size>7</Size></Contents></ListBucketResult>""".replace(b"\n", b"")


def test_the_fast_page_parser_agrees_with_elementtree() -> None:
    fast, tree = parse_page(FLAT_PAGE), parse_tree(FLAT_PAGE)
    assert fast == tree
    assert [o.key for o in fast.objects] == ["x/1 & <y>", "x/2", "x/3&4"]
    assert fast.objects[0].checksum_algorithm == "CRC64NVME" and fast.objects[1].etag.endswith("-2")
    assert (fast.truncated, fast.next_token) == (True, "a&b")
    # an element out of the expected order: the fast path steps aside rather than guess
    odd = FLAT_PAGE.replace(b"<Size>7</Size>", b"").replace(
        b"<Key>x/3&amp;4</Key>", b"<Key>x/3&amp;4</Key><Size>7</Size>"
    )
    assert parse_page(odd) == parse_tree(odd)


def test_listing_requests_are_the_ones_botocore_would_sign() -> None:
    """Our signed URL carries the same canonical query as botocore's own ListObjectsV2 request,
    so S3 computes the same SigV4 signature for it."""
    client = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url="https://s3.eu-west-1.amazonaws.com",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(s3={"addressing_style": "path"}),
    )
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> Any:
        sent.append(request)
        raise RuntimeError("captured")  # stop before the network

    client.meta.events.register("before-send.s3.ListObjectsV2", capture)
    params = {"Bucket": "my.bucket", "Prefix": "a b/c+d~é/", "ContinuationToken": "x/y+z=", "MaxKeys": 1000}
    with pytest.raises(RuntimeError, match="captured"):
        client.list_objects_v2(**params)
    lister = BucketLister(client, bucket="my.bucket", region="eu-west-1", timeouts=Timeouts())
    ours = urlsplit(lister.url(prefix="a b/c+d~é/", token="x/y+z=", start_after=None, delimiter=None))
    theirs = urlsplit(sent[0].url)
    assert ours.path == theirs.path
    assert sorted(parse_qsl(ours.query, keep_blank_values=True)) == sorted(
        parse_qsl(theirs.query, keep_blank_values=True)
    )
    # the raw (encoded) form must match too: SigV4 signs the encoded query as sent
    assert sorted(ours.query.split("&")) == sorted(theirs.query.split("&"))
    headers = lister._signed_headers(lister.url(prefix="p/", token=None, start_after=None, delimiter=None))
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/s3/aws4_request" in headers["Authorization"]


def test_a_lister_keeps_at_most_its_cap_of_requests_in_flight_however_many_streams_read_it() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    client = boto3.client(
        "s3", region_name="eu-west-1", aws_access_key_id="AKID", aws_secret_access_key="secret"
    )
    lister = BucketLister(client, bucket="b", region="eu-west-1", timeouts=Timeouts(), max_in_flight=2)
    lock, now, peak = threading.Lock(), [0], [0]

    class Answer:
        status, data = 200, PAGE

    def send(method: str, url: str, **_: Any) -> Answer:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)  # a server taking its time
        with lock:
            now[0] -= 1
        return Answer()

    lister.s3.send = send  # type: ignore[method-assign]
    with ThreadPoolExecutor(max_workers=6) as streams:  # six partitions open at once
        pages = list(streams.map(lambda p: lister.page(prefix=p), [f"p{i}/" for i in range(6)]))
    assert len(pages) == 6 and all(page.objects for page in pages)
    assert peak[0] == 2


class FakeLister:
    """Answers delimiter listings from a list of keys, as S3 would."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys)
        self.requests = 0

    def page(
        self,
        *,
        prefix: str,
        token: str | None = None,
        start_after: str | None = None,
        delimiter: str | None = None,
    ) -> Page:
        self.requests += 1
        objects, prefixes = [], set()
        for key in self.keys:
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
            else:
                objects.append(obj(key))
        return Page(objects, sorted(prefixes), False, None)


def test_partitions_follow_the_directories_present_on_either_side() -> None:
    src = FakeLister(["data/a/1", "data/a/2", "data/b/1", "data/loose", "data/_mldr/canary/x"])
    dst = FakeLister(["data/a/1", "data/c/1", "data/loose"])
    parts = discover_partitions(src, dst, prefix="data/", exclude=("data/_mldr/",))  # type: ignore[arg-type]
    assert parts.prefixes == ["data/a/", "data/b/", "data/c/"]
    assert [o.key for o in parts.loose[0]] == ["data/loose"]
    assert [o.key for o in parts.loose[1]] == ["data/loose"]


def test_a_single_directory_is_descended_into() -> None:
    keys = [f"iris/snapshots/{i}/data.csv" for i in range(3)]
    parts = discover_partitions(FakeLister(keys), FakeLister(keys), prefix="")  # type: ignore[arg-type]
    assert parts.level == "iris/snapshots/"
    assert parts.prefixes == [f"iris/snapshots/{i}/" for i in range(3)]


# --- options and messages ---------------------------------------------------------------------


def test_options_refuse_bad_input() -> None:
    with pytest.raises(ConfigurationError, match="sample size must be an integer >= 0, got -1"):
        VerifyOptions(sample=-1)
    with pytest.raises(ConfigurationError, match="pending threshold"):
        VerifyOptions(pending_threshold_seconds=0)
    with pytest.raises(ValueError):
        VerifyOptions(mode="everything")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="threshold seconds must be > 0"):
        LagOptions(threshold_seconds=-5)
    assert LagOptions().canary_timeout(dataset(rpo_seconds=10)) == 10
    assert LagOptions().canary_timeout(dataset(rpo_seconds=600)) == 30


def test_breach_lines_name_dataset_keys_and_how_far_over() -> None:
    doc = {
        "name": "features",
        "error": None,
        "threshold_seconds": 60.0,
        "target_region": "us-west-2",
        "missing": ["a.csv", "b.csv"],
        "extra": ["z.csv"],
        "mismatched": [],
        "failed": [],
        "pending": ["p"],
        "findings": [{"key": "a.csv", "over_seconds": 35.0}],
        "restore": {"failures": [{"key": "r.csv", "error": "AccessDenied"}]},
        "retention": {"problems": [], "short_history": []},
        "recovery_points": None,
    }
    lines = breach_lines(doc)
    assert (
        lines[0] == "features: 2 missing: a.csv, b.csv (replication pending up to 35s over the 60s threshold)"
    )
    assert lines[1] == "features: 1 extra: z.csv"
    assert "restore test failed for 1 object(s): r.csv: AccessDenied" in lines[2]
    assert len(lines) == 3, "pending keys are not a breach"


def item(key: str, state: ReplicationState, age: float, size: int = 10, now: float = 1000.0) -> BacklogItem:
    return BacklogItem("src-bucket", key, f"v-{key}", state, size, now - age)


def test_backlog_summary_counts_pending_and_failed_and_ignores_canaries() -> None:
    ds = dataset()
    items = [
        item("data/a", ReplicationState.PENDING, 5),
        item("data/b", ReplicationState.PENDING, 90, size=5),
        item("data/c", ReplicationState.FAILED, 30),
        item("data/_mldr/canary/x", ReplicationState.PENDING, 900),
        item("other/x", ReplicationState.PENDING, 900),
    ]
    summary = summarize_backlog(items, ds, now=1000.0)
    assert (summary["pending_objects"], summary["pending_bytes"], summary["failed_objects"]) == (2, 15, 1)
    assert summary["oldest_pending_age_seconds"] == 90
    assert [o["key"] for o in summary["oldest"]] == ["data/b", "data/c", "data/a"]
    lag = DatasetLag(
        name="training-data",
        source_region="us-east-1",
        target_region="us-west-2",
        source_bucket="src-bucket",
        target_bucket="dst-bucket",
        rpo_seconds=60,
        threshold_seconds=60.0,
        **summary,
    )
    problems = lag.problems()
    assert not lag.ok and len(problems) == 2
    assert "the oldest has waited 90s, 30s over the threshold 60s" in problems[0] and "data/b" in problems[0]
    assert "1 object(s) FAILED replication to us-west-2" in problems[1] and "data/c" in problems[1]


def test_partitions_listed_at_once_depend_on_where_the_servers_are() -> None:
    from mldr.checks.listing import (
        LOCAL_PARTITION_CONCURRENCY,
        REMOTE_PARTITION_CONCURRENCY,
        partition_concurrency,
    )

    # servers on this machine share its cores: few requests in flight
    local = ["http://127.0.0.1:5000", "http://localhost:5001"]
    assert partition_concurrency(local) == LOCAL_PARTITION_CONCURRENCY
    # a remote S3 waits on the network: more in flight
    remote = ["https://s3.us-east-1.amazonaws.com", "https://s3.us-west-2.amazonaws.com"]
    assert partition_concurrency(remote) == REMOTE_PARTITION_CONCURRENCY
    assert partition_concurrency(["http://127.0.0.1:5000", remote[0]]) == REMOTE_PARTITION_CONCURRENCY
    assert LOCAL_PARTITION_CONCURRENCY < REMOTE_PARTITION_CONCURRENCY
