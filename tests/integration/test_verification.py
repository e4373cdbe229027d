"""Backup verification against the sandbox: faults injected through the sandbox are reported
exactly - those keys, in those classes, nothing else - and bad input fails clearly."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mldr.checks.verification import Basis, Finding, VerifyOptions, verify
from mldr.cli import main
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology, load_topology
from tests.admin import admin_factory
from tests.dp_support import (
    exists,
    keys_in,
    ops_keys,
    scoped,
    unique_prefix,
    wait_for,
    wait_quiet,
    write_topology,
)

pytestmark = pytest.mark.sandbox

REPLICATED = 10.0  # the sandbox replicates in ~1 s; margin for a busy two-core machine


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


@pytest.fixture
def clean_faults(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.replication("clear")


def s3(factory: ClientFactory, region: str) -> Any:
    """The test's own writes and injected faults, as the sandbox's admin (a pipeline, a bad actor):
    only verification runs as the DR operator, whose role may not delete a version."""
    return admin_factory(factory.topology).client("s3", region)


def put(client: Any, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    result: dict[str, Any] = client.put_object(Bucket=bucket, Key=key, Body=body, ChecksumSHA256=digest)
    return result


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and out.strip() else out), err


def test_healthy_sandbox_verifies_and_the_cli_exits_0(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    wait_quiet(sandbox, factory, topology)
    before = ops_keys(factory, topology)
    code, doc, _ = cli(capsys, "verify", "--json", "--sample", "3")
    assert code == 0, json.dumps(doc, indent=1)[:3000]
    assert [d["name"] for d in doc["datasets"]] == [d.name for d in topology.datasets]
    for d in doc["datasets"]:
        assert d["ok"] and d["objects_checked"] > 0
        assert {k: d[k] for k in ("missing", "extra", "mismatched", "pending", "failed")} == {
            "missing": [],
            "extra": [],
            "mismatched": [],
            "pending": [],
            "failed": [],
        }
        assert d["restore"]["failures"] == [] and d["restore"]["sampled"] >= 1
    models = next(d for d in doc["datasets"] if d["kind"] == "model_artifacts")
    assert models["recovery_points"] and all(rp["state"] == "restorable" for rp in models["recovery_points"])
    roles = {o["role"] for o in models["recovery_points"][0]["objects"]}
    assert roles == {"manifest", "artifact", "training_snapshot", "feature_snapshot"}
    # the report is kept in both regions, as JSON and HTML
    after = ops_keys(factory, topology)
    for region in topology.region_names:
        new = after[region] - before[region]
        assert {Path(k).suffix for k in new} == {".json", ".html"}, new
        assert all(k.startswith("reports/verification/") for k in new)
    assert set(doc["reports"]) == set(topology.region_names)


@pytest.fixture
def injected(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory, clean_faults: None
) -> Iterator[dict[str, Any]]:
    """Under a fresh prefix of training-data: one replica deleted, one replica overwritten with
    same-size different bytes, one extra object in the replica, one key failing replication,
    and one written while replication is paused."""
    prefix = unique_prefix("verify")
    ds = topology.dataset("training-data")
    primary, secondary = topology.primary_region, topology.secondary_region
    src, dst = s3(factory, primary), s3(factory, secondary)
    src_bucket, dst_bucket = ds.buckets[primary], ds.buckets[secondary]
    keys = {name: f"{prefix}{name}.bin" for name in ("deleted", "edited", "intact", "multipart")}
    for name, key in keys.items():
        if name != "multipart":
            put(src, src_bucket, key, f"{name} payload".encode() * 10)
    # a multipart object: compared on its stored SHA-256 (its ETag is no content hash)
    upload = src.create_multipart_upload(Bucket=src_bucket, Key=keys["multipart"], ChecksumAlgorithm="SHA256")
    parts = []
    for number, byte in ((1, b"a"), (2, b"b")):
        part = src.upload_part(
            Bucket=src_bucket,
            Key=keys["multipart"],
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=byte * (5 * 1024 * 1024),
            ChecksumAlgorithm="SHA256",
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": part["ChecksumSHA256"]})
    src.complete_multipart_upload(
        Bucket=src_bucket,
        Key=keys["multipart"],
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    for key in keys.values():
        wait_for(f"{key} replicated", lambda k=key: exists(dst, dst_bucket, k), REPLICATED)
    # faults in the replica, as a person with access to the standby bucket could cause them
    undo = [(keys["deleted"], dst.delete_object(Bucket=dst_bucket, Key=keys["deleted"])["VersionId"])]
    original = dst.get_object(Bucket=dst_bucket, Key=keys["edited"])["Body"].read()
    edited = put(dst, dst_bucket, keys["edited"], original.swapcase())  # same size, different bytes
    undo.append((keys["edited"], edited["VersionId"]))
    keys["extra"] = f"{prefix}extra.bin"
    undo.append(
        (keys["extra"], put(dst, dst_bucket, keys["extra"], b"only in the standby region")["VersionId"])
    )
    # replication faults, through the sandbox's replicator
    sandbox.replication("fail-keys", f"{prefix}failing-*")
    keys["failing"] = f"{prefix}failing-1.bin"
    put(src, src_bucket, keys["failing"], b"this one fails to replicate")
    sandbox.replication("pause")
    keys["pending"] = f"{prefix}pending.bin"
    put(src, src_bucket, keys["pending"], b"written while replication is paused")
    time.sleep(1.0)  # let the replicator see both writes (its change feed is polled every 0.1 s)
    yield {"prefix": prefix, "keys": keys, "topology": scoped(topology, "training-data", prefix)}
    # Put the standby back as it was (the session's other tests check the whole sandbox): remove
    # the versions the faults created, and let the failed and paused keys replicate.
    sandbox.replication("clear")
    for key, version in undo:
        dst.delete_object(Bucket=dst_bucket, Key=key, VersionId=version)
    for key in (keys["failing"], keys["pending"]):
        wait_for(
            f"{key} replicated after the faults were lifted",
            lambda k=key: exists(dst, dst_bucket, k),
            REPLICATED,
        )


def test_injected_faults_are_reported_exactly(
    sandbox: Sandbox,
    factory: ClientFactory,
    injected: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys, topology = injected["keys"], injected["topology"]
    report = verify(AwsCloud(factory), topology, datasets=["training-data"], options=VerifyOptions(sample=10))
    [result] = report.datasets
    assert result.error is None
    got = {f.value: result.keys(f) for f in Finding}
    assert got == {
        "missing": [keys["deleted"]],
        "mismatched": [keys["edited"]],
        "extra": [keys["extra"]],
        "failed": [keys["failing"]],
        "pending": [keys["pending"]],
    }
    assert result.objects_checked == 7
    by_key = {f.key: f for f in result.findings}
    # the dataset buckets are SSE-KMS: no ETag is a content hash, the stored SHA-256 decides
    assert by_key[keys["edited"]].basis is Basis.SHA256
    assert "stored SHA-256" in by_key[keys["edited"]].detail
    assert "COMPLETED" in by_key[keys["deleted"]].detail
    assert keys["multipart"] in result.basis_keys["sha256"], "multipart compared on its stored SHA-256"
    assert keys["intact"] in result.basis_keys["sha256"]
    assert "etag" not in result.basis_counts, "an SSE-KMS object compared on its ETag"
    # the restore test sampled every replica that matches and all of them restore
    assert set(result.restore.sampled) == {keys["intact"], keys["multipart"]}  # type: ignore[union-attr]
    assert result.restore.failures == []  # type: ignore[union-attr]
    assert not result.ok

    # once the paused write is older than the threshold, it is no longer "pending" but missing
    strict = verify(
        AwsCloud(factory),
        topology,
        datasets=["training-data"],
        options=VerifyOptions(sample=0, pending_threshold_seconds=0.5),
    )
    [late] = strict.datasets
    assert late.keys(Finding.PENDING) == []
    assert sorted(late.keys(Finding.MISSING)) == sorted([keys["deleted"], keys["pending"]])
    stale = next(f for f in late.findings if f.key == keys["pending"])
    assert stale.over_seconds is not None and stale.over_seconds > 0
    assert "over the 0s threshold" in stale.detail or "over the 1s threshold" in stale.detail

    # the CLI twin says the same, in JSON and in words, and exits 1
    monkeypatch.setenv("MLDR_TOPOLOGY", str(write_topology(topology, tmp_path)))
    code, doc, err = cli(
        capsys, "verify", "--dataset", "training-data", "--sample", "0", "--json", "--no-report"
    )
    assert code == 1
    [d] = doc["datasets"]
    assert (d["name"], d["ok"], d["objects_checked"]) == ("training-data", False, 7)
    assert (d["missing"], d["extra"], d["mismatched"], d["failed"], d["pending"]) == (
        [keys["deleted"]],
        [keys["extra"]],
        [keys["edited"]],
        [keys["failing"]],
        [keys["pending"]],
    )
    assert "backup-verification-failed.md" in err
    code, text, _ = cli(capsys, "verify", "--dataset", "training-data", "--sample", "0", "--no-report")
    assert code == 1 and f"training-data: 1 missing: {keys['deleted']}" in text


def test_a_replica_that_cannot_be_read_fails_the_restore_test(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory
) -> None:
    prefix = unique_prefix("restore")
    ds = topology.dataset("features")
    primary, secondary = topology.primary_region, topology.secondary_region
    key = f"{prefix}unreadable.csv"
    put(s3(factory, primary), ds.buckets[primary], key, b"a,b\n1,2\n")
    wait_for("replicated", lambda: exists(s3(factory, secondary), ds.buckets[secondary], key), REPLICATED)
    downloads = factory.client("s3", secondary)  # the client verification reads the replica with

    def deny(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == key:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "KMS key disabled"}}, "GetObject")

    downloads.meta.events.register("before-parameter-build.s3.GetObject", deny)  # this test's factory only
    report = verify(
        AwsCloud(factory),
        scoped(topology, "features", prefix),
        datasets=["features"],
        options=VerifyOptions(sample=5),
    )
    [result] = report.datasets
    assert result.findings == []
    assert result.restore is not None
    assert result.restore.failures == [
        {
            "key": key,
            "error": f"could not be restored: s3://{ds.buckets[secondary]}/{key} in {secondary}: "
            "AccessDenied: KMS key disabled",
        }
    ]
    assert not result.ok


def test_short_history_in_the_replica_is_reported(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory
) -> None:
    prefix = unique_prefix("history")
    ds = topology.dataset("training-data")
    primary, secondary = topology.primary_region, topology.secondary_region
    src, dst = s3(factory, primary), s3(factory, secondary)
    kept, trimmed = f"{prefix}kept.txt", f"{prefix}trimmed.txt"
    for body in (b"version 1", b"version 2"):
        for key in (kept, trimmed):
            put(src, ds.buckets[primary], key, body)
        for key in (kept, trimmed):
            wait_for(
                "replicated",
                lambda k=key, b=body: (
                    exists(dst, ds.buckets[secondary], k)
                    and dst.get_object(Bucket=ds.buckets[secondary], Key=k)["Body"].read() == b
                ),
                REPLICATED,
            )
    versions = dst.list_object_versions(Bucket=ds.buckets[secondary], Prefix=trimmed)["Versions"]
    oldest = min(versions, key=lambda v: v["LastModified"])
    dst.delete_object(Bucket=ds.buckets[secondary], Key=trimmed, VersionId=oldest["VersionId"])
    report = verify(
        AwsCloud(factory),
        scoped(topology, "training-data", prefix, min_versions=2),
        datasets=["training-data"],
        options=VerifyOptions(sample=0),
    )
    [result] = report.datasets
    assert result.findings == []
    assert result.retention is not None and result.retention.history_checked
    assert result.retention.short_history == [{"key": trimmed, "required": 2, "replica_versions": 1}]
    assert not result.ok


def test_a_model_version_missing_a_dependency_is_not_restorable(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory
) -> None:
    """Hide the feature snapshot of the served model in the standby region (a delete marker),
    then put it back by removing the marker."""
    from mldr.ml.registry import list_manifests

    primary, secondary = topology.primary_region, topology.secondary_region
    models = topology.dataset("model-artifacts")
    [manifest, *_] = list_manifests(s3(factory, primary), bucket=models.buckets[primary])
    assert manifest.feature_snapshot is not None
    features = topology.dataset(manifest.feature_snapshot.dataset)
    dst = s3(factory, secondary)
    # (a failover test earlier in the session leaves the standby's rule there, disabled)
    back = AwsCloud(factory).objects(secondary).replication(features.buckets[secondary]) or {}
    assert not [r for r in back.get("Rules", []) if r.get("Status") == "Enabled"], (
        "the standby bucket replicates back: hiding an object there would hide it in the primary too"
    )
    marker = dst.delete_object(Bucket=features.buckets[secondary], Key=manifest.feature_snapshot.key)
    try:
        report = verify(
            AwsCloud(factory), topology, datasets=["model-artifacts"], options=VerifyOptions(sample=0)
        )
    finally:
        dst.delete_object(
            Bucket=features.buckets[secondary],
            Key=manifest.feature_snapshot.key,
            VersionId=marker["VersionId"],
        )
    [result] = report.datasets
    point = next(rp for rp in result.recovery_points or [] if rp.version == manifest.version)
    assert point.state == "broken"
    states = {o.role: o.state.value for o in point.objects}
    assert states == {
        "manifest": "ok",
        "artifact": "ok",
        "training_snapshot": "ok",
        "feature_snapshot": "missing",
    }
    assert not result.ok


def test_bad_input_fails_clearly_and_writes_nothing(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    before = ops_keys(factory, topology)
    code, _, err = cli(capsys, "verify", "--dataset", "no-such-dataset")
    assert code == 2
    assert (
        "unknown dataset 'no-such-dataset': this topology has training-data, features, model-artifacts" in err
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--sample", "-3"])
    assert exit_info.value.code == 2
    assert "argument --sample: must be >= 0, got -3" in capsys.readouterr().err
    code, _, err = cli(capsys, "lag", "--dataset", "nope")
    assert code == 2 and "unknown dataset 'nope'" in err
    assert ops_keys(factory, topology) == before


def test_an_unreachable_secondary_fails_fast_and_only_the_failure_report_is_written(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    before = ops_keys(factory, topology)
    data_before = {d.name: keys_in(s3(factory, primary), d.buckets[primary]) for d in topology.datasets}
    sandbox.region_outage(secondary)
    try:
        started = time.monotonic()
        code, doc, _ = cli(capsys, "verify", "--dataset", "training-data", "--json")
        took = time.monotonic() - started
        primary_after = keys_in(s3(factory, primary), topology.region(primary).ops_bucket)
    finally:
        sandbox.heal(secondary)
    assert code == 1
    [d] = doc["datasets"]
    assert not d["ok"]
    assert secondary in d["error"] and "no answer" in d["error"], d["error"]
    # the probe's timeout, once: the report and metrics skip the region it found silent
    assert took < 15, f"an outage should fail within seconds, took {took:.0f}s"
    assert set(doc["reports"]) == {primary}, "the report of the failure is kept where it can be"
    new = primary_after - before[primary]
    assert len(new) == 2 and all(k.startswith("reports/verification/") for k in new)
    after = ops_keys(factory, topology)
    assert after[secondary] == before[secondary]
    assert {
        d.name: keys_in(s3(factory, primary), d.buckets[primary]) for d in topology.datasets
    } == data_before
