"""The resources infra/ declares for the sandbox's stack, as the AWS APIs take them.

`declared.json` (`mldr.sandbox.declared`) holds every declared resource of a type the sandbox has
a stand-in for, with the inputs Pulumi's AWS provider would send. Provisioning applies them
through the same APIs: each dataset's KMS keys, the replication roles and their policies, and
every bucket setting (versioning, default encryption, public access block, lifecycle, object
lock, replication) - with the declared names (buckets, key and role ARNs) mapped onto the
sandbox's. Pulumi spells the inputs in camelCase; `api_shape` turns them into the API's names.

The control table's schema (key, attributes, billing, stream) and its initial lease item are the
declared ones too; its name and its replicas (both on the sandbox's global server) are the
sandbox's. Declared but not applied (see README's sandbox table for why): the buckets' TLS-only
policies, topics' tags, the health checks and records (the sandbox's stand-ins for those are its
own: `mldr.sandbox.provision`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mldr.sandbox.declared import rewrite, snapshot

BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
TABLE = "aws:dynamodb/table:Table"
TABLE_ITEM = "aws:dynamodb/tableItem:TableItem"
#: Bucket settings in the order S3 needs them: replication wants versioning on both sides.
BUCKET_SETTINGS = (VERSIONING, ENCRYPTION, PUBLIC_ACCESS_BLOCK, LIFECYCLE, OBJECT_LOCK, REPLICATION)
#: Where the API's name is not the input's with a capital first letter.
_API_NAMES = {
    "id": "ID",
    "sseAlgorithm": "SSEAlgorithm",
    "kmsMasterKeyId": "KMSMasterKeyID",
    "replicaKmsKeyId": "ReplicaKmsKeyID",
}


def api_shape(value: Any) -> Any:
    """Pulumi's inputs (`{"sseAlgorithm": "aws:kms", "priority": 1.0}`) as the API takes them
    (`{"SSEAlgorithm": "aws:kms", "Priority": 1}`): names capitalised, whole numbers as ints."""
    if isinstance(value, dict):
        return {_API_NAMES.get(k, k[:1].upper() + k[1:]): api_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [api_shape(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Declared:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]

    @property
    def region(self) -> str | None:
        region = self.inputs.get("region")
        return str(region) if region else None


def resources(kind: str | None = None) -> Iterator[Declared]:
    for r in snapshot()["resources"]:
        if kind is None or r["type"] == kind:
            yield Declared(r["type"], r["name"], r["inputs"], r["outputs"])


def dataset_keys(regions: dict[str, str]) -> dict[tuple[str, str], Declared]:
    """(dataset, sandbox region) -> its declared KMS key; `regions` maps declared to sandbox's."""
    found = {}
    for key in resources(KEY):
        dataset = key.inputs.get("tags", {}).get("mldr:dataset")
        if dataset and key.region in regions:
            found[(dataset, regions[key.region])] = key
    return found


def create_key(kms: Any, key: Declared) -> str:
    """Create the key as declared (description, policy, tags); its ARN."""
    tags = [{"TagKey": k, "TagValue": v} for k, v in sorted(key.inputs.get("tags", {}).items())]
    created = kms.create_key(
        Description=key.inputs.get("description", ""), Policy=key.inputs["policy"], Tags=tags
    )
    if key.inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=created["KeyMetadata"]["KeyId"])
    return str(created["KeyMetadata"]["Arn"])


@dataclass(frozen=True)
class BucketSetting:
    """One declared bucket setting, named as the sandbox names things."""

    type: str
    name: str
    region: str
    bucket: str
    inputs: dict[str, Any]


def bucket_settings(names: dict[str, str], regions: dict[str, str]) -> list[BucketSetting]:
    """Every declared bucket setting, its names mapped (`mldr.sandbox.declared.name_map`), in
    the order they can be applied."""
    settings = []
    for kind in BUCKET_SETTINGS:
        for r in resources(kind):
            mapped = rewrite(r.inputs, names)
            region = regions.get(r.region or "", r.region or "")
            settings.append(BucketSetting(kind, r.name, region, mapped["bucket"], mapped))
    return settings


def apply_bucket_setting(s3: Any, setting: BucketSetting) -> None:
    """Put one setting through the S3 API, as Pulumi's provider would."""
    bucket, inputs = setting.bucket, setting.inputs
    if setting.type == VERSIONING:
        configuration = api_shape(inputs["versioningConfiguration"])
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": configuration["Status"]})
    elif setting.type == ENCRYPTION:
        s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": api_shape(inputs["rules"])}
        )
    elif setting.type == PUBLIC_ACCESS_BLOCK:
        fields = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration=api_shape({f: bool(inputs.get(f)) for f in fields}),
        )
    elif setting.type == LIFECYCLE:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": api_shape(inputs["rules"])}
        )
    elif setting.type == OBJECT_LOCK:
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": inputs.get("objectLockEnabled", "Enabled"),
                **({"Rule": api_shape(inputs["rule"])} if inputs.get("rule") else {}),
            },
        )
    elif setting.type == REPLICATION:
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=replication_configuration(inputs))
    else:
        raise ValueError(f"{setting.name}: no way to apply a {setting.type}")


def replication_configuration(inputs: dict[str, Any]) -> dict[str, Any]:
    """A declared `BucketReplicationConfig`'s inputs as `PutBucketReplication` takes them."""
    return {"Role": inputs["role"], "Rules": api_shape(inputs["rules"])}


def replication_roles(names: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """[(sandbox role name, declared name, {assume: trust policy, policies: {name: policy}})]
    for every declared role the sandbox names (the datasets' replication roles)."""
    roles = []
    for role in resources(ROLE):
        arn = names.get(role.outputs.get("arn", ""))
        if arn is None:
            continue
        declared_name = role.outputs["arn"].rsplit("/", 1)[-1]
        policies = {
            p.name: rewrite(json.loads(p.inputs["policy"]), names)
            for p in resources(ROLE_POLICY)
            if p.inputs.get("role") == declared_name
        }
        trust = rewrite(json.loads(role.inputs["assumeRolePolicy"]), names)
        roles.append((arn.rsplit("/", 1)[-1], role.name, {"assume": trust, "policies": policies}))
    return roles


def control_table(regions: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(CreateTable's schema arguments, the initial lease item) as declared; `regions` maps the
    declared regions to the sandbox's (the lease names the active one)."""
    (table,) = resources(TABLE)
    (item,) = resources(TABLE_ITEM)
    inputs = table.inputs
    keys = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
    if inputs.get("rangeKey"):
        keys.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
    schema: dict[str, Any] = {
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
        ],
        "KeySchema": keys,
        "BillingMode": inputs.get("billingMode", "PROVISIONED"),
    }
    if inputs.get("streamEnabled"):
        schema["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": inputs["streamViewType"]}
    return schema, _in_regions(json.loads(item.inputs["item"]), regions)


def _in_regions(value: Any, regions: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _in_regions(v, regions) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_regions(v, regions) for v in value]
    return regions.get(value, value) if isinstance(value, str) else value
