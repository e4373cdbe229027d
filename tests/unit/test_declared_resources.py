"""The sandbox applies infra/'s declarations through the AWS APIs (mldr.sandbox.declared_resources)."""

from __future__ import annotations

from mldr.actions.replication import dataset_configuration
from mldr.sandbox import declared_resources as dr
from mldr.sandbox.declared import snapshot
from mldr.topology import parse_topology


def test_api_shape_names_fields_as_the_api_does_and_whole_numbers_as_ints() -> None:
    declared = {
        "rules": [
            {
                "id": "r",
                "priority": 1.0,
                "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "k"},
                "destination": {
                    "encryptionConfiguration": {"replicaKmsKeyId": "k2"},
                    "time": {"minutes": 15.0},
                },
                "ratio": 0.5,
            }
        ]
    }
    assert dr.api_shape(declared) == {
        "Rules": [
            {
                "ID": "r",
                "Priority": 1,
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"},
                "Destination": {
                    "EncryptionConfiguration": {"ReplicaKmsKeyID": "k2"},
                    "Time": {"Minutes": 15},
                },
                "Ratio": 0.5,
            }
        ]
    }


def test_each_declared_replication_configuration_is_what_the_runbooks_write() -> None:
    """The sandbox puts the program's rule; a failback's protect writes the builder's: one rule."""
    declared = snapshot()["topology"]
    topology = parse_topology(declared, source="declared.json")
    configurations = {r.inputs["bucket"]: r.inputs for r in dr.resources(dr.REPLICATION)}
    assert len(configurations) == len(topology.datasets)
    for dataset in topology.datasets:
        source, target = topology.primary_region, topology.secondary_region
        put = dr.replication_configuration(configurations[dataset.buckets[source]])
        assert put == dataset_configuration(dataset, source=source, target=target), dataset.name


def test_every_declared_bucket_setting_can_be_applied_and_names_a_declared_bucket() -> None:
    declared = snapshot()["topology"]
    regions = {r: r for r in (declared["primary_region"], declared["secondary_region"])}
    buckets = {r.outputs["bucket"] for r in dr.resources(dr.BUCKET)}
    settings = dr.bucket_settings({}, regions)
    assert {s.type for s in settings} >= {
        dr.VERSIONING,
        dr.ENCRYPTION,
        dr.PUBLIC_ACCESS_BLOCK,
        dr.REPLICATION,
    }
    for setting in settings:
        assert setting.bucket in buckets, setting.name
        assert setting.region in regions, setting.name


def test_the_declared_lease_is_the_one_a_new_topology_starts_with_in_the_sandboxs_regions() -> None:
    from mldr.cloud.aws.dynamodb import initial_lease_item

    declared = snapshot()["topology"]
    primary, secondary = declared["primary_region"], declared["secondary_region"]
    schema, lease = dr.control_table({primary: "eu-west-1", secondary: "eu-central-1"})
    expected = initial_lease_item("eu-west-1")
    expected.pop("updated_at")  # infra/ seeds none (the runbooks tolerate its absence)
    assert lease == expected
    assert schema["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
