"""The topology contract: a bad document fails with every problem named by field path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mldr.errors import TopologyError, TopologyNotFound, UnknownDataset, UnknownRegion
from mldr.topology import DatasetKind, json_schema, load_topology, load_topology_file, parse_topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"


@pytest.fixture
def doc() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def problems(document: Any) -> list[str]:
    with pytest.raises(TopologyError) as info:
        parse_topology(document)
    return info.value.problems


def test_example_document_loads(doc: dict[str, Any]) -> None:
    t = parse_topology(doc)
    assert t.region_names == ["us-east-1", "us-west-2"]
    assert t.other_region("us-east-1") == "us-west-2"
    assert t.dataset("model-artifacts").kind is DatasetKind.MODEL_ARTIFACTS
    assert t.regions["us-west-2"].compute.standby_capacity == 1


def test_missing_bucket_is_named_by_path(doc: dict[str, Any]) -> None:
    del doc["datasets"][1]["buckets"]["us-west-2"]
    assert problems(doc) == ["datasets[1].buckets.us-west-2: missing"]


def test_same_region_twice(doc: dict[str, Any]) -> None:
    doc["secondary_region"] = "us-east-1"
    found = problems(doc)
    assert any(p.startswith("secondary_region: must differ from primary_region") for p in found)


def test_region_without_connection_id(doc: dict[str, Any]) -> None:
    del doc["regions"]["us-west-2"]["connection_id"]
    assert problems(doc) == ["regions.us-west-2.connection_id: missing"]


def test_region_entry_missing_entirely(doc: dict[str, Any]) -> None:
    del doc["regions"]["us-west-2"]
    assert "regions.us-west-2: missing (every region needs a connection id and endpoint)" in problems(doc)


def test_every_problem_is_listed_at_once(doc: dict[str, Any]) -> None:
    doc["datasets"][0]["kind"] = "bogus"
    doc["datasets"][2]["rpo_seconds"] = -5
    doc["regions"]["us-east-1"]["compute"].pop("cluster")
    doc["regions"]["us-east-1"]["typo_field"] = 1
    found = problems(doc)
    assert len(found) == 4
    assert "datasets[0].kind: 'bogus' is not one of 'training_data', 'features' or 'model_artifacts'" in found
    assert any(p.startswith("datasets[2].rpo_seconds:") for p in found)
    assert "regions.us-east-1.compute.cluster: missing (required for kind ecs)" in found
    assert "regions.us-east-1.typo_field: unknown field (remove it or check its spelling)" in found


def test_invalid_names_are_rejected(doc: dict[str, Any]) -> None:
    doc["primary_region"] = "Virginia"
    doc["datasets"][0]["buckets"]["us-east-1"] = "Bad_Bucket"
    found = problems(doc)
    assert any(p.startswith("primary_region: 'Virginia' is not valid") for p in found)
    assert any(p.startswith("datasets[0].buckets.us-east-1: 'Bad_Bucket' is not valid") for p in found)


def test_replica_bucket_must_differ(doc: dict[str, Any]) -> None:
    doc["datasets"][0]["buckets"]["us-west-2"] = doc["datasets"][0]["buckets"]["us-east-1"]
    assert any("already used by datasets[0].buckets.us-east-1" in p for p in problems(doc))


def test_duplicate_dataset_and_missing_model_artifacts(doc: dict[str, Any]) -> None:
    doc["datasets"][2] = copy.deepcopy(doc["datasets"][0])
    doc["datasets"][2]["buckets"] = {"us-east-1": "other-a", "us-west-2": "other-b"}
    found = problems(doc)
    assert "datasets[2].name: duplicate dataset name 'training-data'" in found
    assert "datasets: needs a dataset of kind model_artifacts (the models DR protects)" in found


def test_a_region_written_twice_is_refused_not_silently_merged(tmp_path: Path) -> None:
    """JSON keeps the last of two equal keys: the first region's settings would vanish."""
    text = FIXTURE.read_text()
    regions_at = text.index('"us-west-2"', text.index('"regions"'))
    twice = text[:regions_at] + '"us-east-1": {"connection_id": "aws_other"}, ' + text[regions_at:]
    path = tmp_path / "twice.json"
    path.write_text(twice)
    with pytest.raises(TopologyError) as info:
        load_topology_file(path)
    assert info.value.problems == [
        "us-east-1: given twice in one object (JSON keeps only the last); remove one"
    ]


def test_a_directory_named_as_the_topology_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyNotFound, match="is a directory: name the JSON file in it"):
        load_topology_file(tmp_path)


def test_wrong_version_and_not_json() -> None:
    assert problems('{"version": 3}')[0] == "version: 3 is not allowed: expected 2"
    assert problems("{not json")[0].startswith("(document): not valid JSON")
    assert problems("[1, 2]") == ["(document): expected a JSON object, got list"]


def test_a_dataset_without_replication_settings_is_named_with_the_field(doc: dict[str, Any]) -> None:
    """Without its replica key the runbooks would write a rule S3 applies to no SSE-KMS object."""
    del doc["datasets"][2]["replication"]
    del doc["datasets"][0]["replication"]["us-west-2"]["role_arn"]
    assert problems(doc) == [
        "datasets[0].replication.us-west-2.role_arn: missing",
        "datasets[2].replication: missing",
    ]


def test_a_dataset_missing_one_regions_replication_settings(doc: dict[str, Any]) -> None:
    del doc["datasets"][1]["replication"]["us-east-1"]
    assert problems(doc) == [
        "datasets[1].replication.us-east-1: missing (kms_key_arn, role_arn and rule_id of us-east-1)"
    ]


def test_a_replication_key_of_another_region_is_refused(doc: dict[str, Any]) -> None:
    doc["datasets"][0]["replication"]["us-west-2"]["kms_key_arn"] = (
        "arn:aws:kms:us-east-1:123456789012:key/training-data-use1"
    )
    assert problems(doc) == [
        "datasets[0].replication.us-west-2.kms_key_arn: the key is in us-east-1, not us-west-2 "
        "(the bucket's key and the replica key must be the region's own)"
    ]


def test_a_version_1_document_says_what_changed_and_how_to_get_a_current_one(doc: dict[str, Any]) -> None:
    doc["version"] = 1
    for dataset in doc["datasets"]:
        del dataset["replication"]
    for region in doc["regions"].values():
        region["replication_role_arn"] = "arn:aws:iam::123456789012:role/mldr-replication"
    found = problems(doc)
    assert found[0].startswith("version: 1 is an earlier schema; this mldr reads version 2"), found
    assert "mldr topology import" in found[0] and "mldr sandbox up" in found[0]
    assert "datasets[0].replication: missing" in found
    assert "regions.us-east-1.replication_role_arn: unknown field (remove it or check its spelling)" in found
    assert not [p for p in found if p.startswith("version: 1 is not allowed")]


def test_standby_larger_than_active(doc: dict[str, Any]) -> None:
    doc["regions"]["us-east-1"]["compute"]["standby_capacity"] = 5
    assert problems(doc) == ["regions.us-east-1.compute.standby_capacity: larger than active_capacity (2)"]


def test_the_control_state_write_region_must_be_a_replica(doc: dict[str, Any]) -> None:
    doc["control_state"]["write_region"] = "eu-west-1"
    assert (
        "control_state.write_region: eu-west-1 is not one of the table's replicas (us-east-1, us-west-2)"
        in (problems(doc))
    )
    doc["control_state"]["consistency"] = "mostly"
    assert any(p.startswith("control_state.consistency") for p in problems(doc))


def test_unknown_region_and_dataset_lookups(doc: dict[str, Any]) -> None:
    t = parse_topology(doc)
    with pytest.raises(
        UnknownRegion, match="unknown region 'eu-west-1': this topology has us-east-1, us-west-2"
    ):
        t.region("eu-west-1")
    with pytest.raises(UnknownDataset, match="unknown dataset 'nope'"):
        t.datasets_named(["nope"])


def test_loader_sources(doc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLDR_TOPOLOGY", raising=False)
    with pytest.raises(TopologyNotFound, match="set MLDR_TOPOLOGY"):
        load_topology(use_airflow=False)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("MLDR_TOPOLOGY", str(path))
    assert load_topology(use_airflow=False).name == "example"
    assert load_topology(doc).name == "example"
    with pytest.raises(TopologyNotFound, match="does not exist"):
        load_topology_file(tmp_path / "missing.json")
    path.write_text("{}")
    with pytest.raises(TopologyError, match=str(path)):
        load_topology(use_airflow=False)


def test_schema_describes_the_document() -> None:
    schema = json_schema()
    assert schema["properties"]["version"]["const"] == 2
    assert {"primary_region", "secondary_region", "regions", "datasets", "inference"} <= set(
        schema["required"]
    )


def test_cli_validate_and_schema(
    doc: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mldr.cli import main

    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc))
    assert main(["topology", "validate", str(good)]) == 0
    assert "valid topology 'example'" in capsys.readouterr().out
    del doc["datasets"][1]["buckets"]["us-west-2"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["topology", "validate", str(bad)]) == 2
    assert "datasets[1].buckets.us-west-2: missing" in capsys.readouterr().err
    assert main(["topology", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "mldr topology document"


def test_autopilot_defaults_off_and_bad_values_are_named(doc: dict[str, Any]) -> None:
    from mldr.topology import AutopilotMode

    assert parse_topology(doc).autopilot.mode is AutopilotMode.OFF, "autopilot is opt-in"
    doc["autopilot"] = {"mode": "act", "observers_required": 3, "for_seconds": 30}
    assert parse_topology(doc).autopilot.for_seconds == 30
    doc["autopilot"] = {
        "mode": "auto",
        "observers_required": 1,
        "for_seconds": 0,
        "block_after_seconds": -1,
        "max_per_day": 0,
        "cooldown": 5,
    }
    found = problems(doc)
    assert found[0].startswith("autopilot.mode: 'auto' is not one of 'off', 'recommend' or 'act'"), found
    assert any(
        p.startswith("autopilot.observers_required: ") and "greater than or equal to 2" in p for p in found
    )
    for field in ("for_seconds", "block_after_seconds", "max_per_day"):
        assert any(p.startswith(f"autopilot.{field}: ") for p in found), (field, found)
    assert "autopilot.cooldown: unknown field (remove it or check its spelling)" in found
