"""infra/config.py: the stack config is validated, with every problem listed, before any resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import config
from infra.components import short_region

INFRA = Path(__file__).resolve().parents[2] / "infra"
MINIMAL = {"dnsName": "inference.example.com", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/i:1"}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as failure:
        config.load(raw)
    return failure.value.problems


def test_defaults_need_only_a_dns_name_and_an_image() -> None:
    cfg = config.load(MINIMAL, default_name="mldr-dev")
    assert cfg.name == "mldr-dev"
    assert cfg.regions == ("us-east-1", "us-west-2")
    assert cfg.connection_ids == {"us-east-1": "aws_us_east_1", "us-west-2": "aws_us_west_2"}
    assert cfg.dns.hosted_zone_name == "example.com" and cfg.dns.hosted_zone_id is None
    assert (cfg.dns.health_check_interval, cfg.dns.failure_threshold) == (30, 3)
    assert [d.name for d in cfg.datasets] == ["training-data", "features", "model-artifacts"]
    # Pilot light by default: the standby region runs nothing until a failover scales it.
    assert cfg.desired_count("us-east-1") == 2 and cfg.desired_count("us-west-2") == 0


def test_pulumi_config_strings_are_coerced() -> None:
    cfg = config.load(
        {
            **MINIMAL,
            "activeCapacity": "4",
            "standbyCapacity": "1",
            "healthCheckInterval": "10",
            "datasets": '[{"name": "models", "kind": "model_artifacts", "objectLockDays": 7}]',
            "airflowPrincipalArns": '["arn:aws:iam::123456789012:role/airflow"]',
        }
    )
    assert (cfg.compute.active_capacity, cfg.compute.standby_capacity, cfg.dns.health_check_interval) == (
        4,
        1,
        10,
    )
    (dataset,) = cfg.datasets
    assert dataset.object_lock_days == 7 and dataset.rpo_seconds == cfg.rpo_seconds
    assert cfg.airflow_principal_arns == ("arn:aws:iam::123456789012:role/airflow",)


def test_same_region_twice_is_refused() -> None:
    (problem,) = problems({**MINIMAL, "primaryRegion": "eu-west-1", "secondaryRegion": "eu-west-1"})
    assert problem.startswith("secondaryRegion: must differ from primaryRegion (both are eu-west-1)")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("lambda", "computeKind: 'lambda' is not a known compute kind (known: ecs)"),
        ("asg", "computeKind: 'asg' is a compute kind the topology knows, but infra/ provisions only ecs"),
    ],
)
def test_unknown_compute_kind_is_refused(kind: str, expected: str) -> None:
    assert problems({**MINIMAL, "computeKind": kind}) == [expected]


def test_missing_dns_name_is_refused() -> None:
    (problem,) = problems({"image": MINIMAL["image"]})
    assert problem.startswith("dnsName: missing")


def test_missing_image_says_how_to_build_it() -> None:
    """No placeholder image that nothing builds: the stack names an image built from docker/."""
    (problem,) = problems({"dnsName": MINIMAL["dnsName"]})
    assert problem.startswith("image: missing: build docker/inference.Dockerfile")
    assert (INFRA.parent / "docker" / "inference.Dockerfile").is_file()


@pytest.mark.parametrize("path", sorted(INFRA.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_committed_stack_passes_the_programs_own_check(path: Path) -> None:
    stack = yaml.safe_load(path.read_text())["config"]
    raw = {k.removeprefix("mldr:"): v for k, v in stack.items() if k.startswith("mldr:")}
    config.load(raw)  # raises ConfigError listing every problem


def test_every_problem_is_listed_at_once() -> None:
    found = problems(
        {
            "primaryRegion": "us-east-1",
            "secondaryRegion": "us-east-1",
            "computeKind": "k8s",
            "healthCheckInterval": 20,
            "healthCheckFailureThreshold": 11,
            "activeCapacity": 1,
            "standbyCapacity": 2,
            "taskCpu": 256,
            "taskMemory": 8192,
            "dnsNme": "typo.example.com",
        }
    )
    keys = [p.split(":", 1)[0] for p in found]
    assert keys == [
        "dnsNme",
        "secondaryRegion",
        "dnsName",
        "healthCheckInterval",
        "healthCheckFailureThreshold",
        "computeKind",
        "standbyCapacity",
        "taskMemory",
        "image",
    ], found
    message = str(config.ConfigError(found))
    assert "9 problems" in message and "nothing was deployed" in message


@pytest.mark.parametrize(
    ("datasets", "expected"),
    [
        ([], "datasets: at least one dataset is required"),
        ([{"name": "features", "kind": "features"}], "datasets: needs a dataset of kind model_artifacts"),
        ([{"name": "m", "kind": "models"}], "datasets[0].kind: 'models' is not one of"),
        ([{"name": "Models", "kind": "model_artifacts"}], "datasets[0].name: 'Models' must be lowercase"),
        ([{"name": "m" * 41, "kind": "model_artifacts"}], "datasets[0].name: 'mmmm"),
        (
            [{"name": "m", "kind": "model_artifacts"}, {"name": "m", "kind": "features"}],
            "datasets[1].name: duplicate dataset name 'm'",
        ),
        ([{"name": "m", "kind": "model_artifacts", "rpo": 60}], "datasets[0].rpo: unknown field"),
        (
            [{"name": "m", "kind": "model_artifacts", "minVersions": 0}],
            "datasets[0].minVersions: 0 is out of range",
        ),
        ("[not json", "datasets: not valid JSON"),
    ],
)
def test_bad_datasets_are_refused(datasets: Any, expected: str) -> None:
    found = problems({**MINIMAL, "datasets": datasets})
    assert any(p.startswith(expected) for p in found), found


def test_hosted_zone_must_be_a_parent_of_the_dns_name() -> None:
    (problem,) = problems({**MINIMAL, "hostedZoneName": "example.org"})
    assert problem.startswith("hostedZoneName: 'example.org' is not a parent of dnsName")


def test_pulumi_yaml_describes_every_key_with_its_default() -> None:
    project = yaml.safe_load((INFRA / "Pulumi.yaml").read_text())
    declared = project["config"]
    assert set(declared) == set(config.DEFAULTS), "Pulumi.yaml and config.DEFAULTS list different keys"
    for key, default in config.DEFAULTS.items():
        entry = declared[key]
        if "value" in entry:
            assert entry["value"] == default, f"Pulumi.yaml {key}: value differs from config.DEFAULTS"
            continue
        assert entry.get("description"), f"Pulumi.yaml {key}: no description"
        assert entry.get("default") == default, (
            f"Pulumi.yaml {key}: default {entry.get('default')!r} != {default!r}"
        )


def test_dev_stack_example_is_a_valid_warm_standby() -> None:
    stack = yaml.safe_load((INFRA / "Pulumi.dev.yaml").read_text())["config"]
    raw = {k.removeprefix("mldr:"): v for k, v in stack.items() if k.startswith("mldr:")}
    cfg = config.load(raw)
    assert cfg.compute.standby_capacity > 0, "the dev example is meant to show warm standby"
    assert stack["aws:region"] == cfg.primary_region


@pytest.mark.parametrize(
    ("region", "short"),
    [
        ("us-east-1", "use1"),
        ("us-west-2", "usw2"),
        ("ap-southeast-2", "apse2"),
        ("ap-south-1", "aps1"),
        ("us-gov-west-1", "usgw1"),
    ],
)
def test_short_region_names(region: str, short: str) -> None:
    assert short_region(region) == short


def test_the_control_table_gets_a_witness_where_strong_consistency_is_offered() -> None:
    """Multi-Region strong consistency needs both regions and the witness in one region set."""
    assert config.load(MINIMAL).control_witness_region == "us-east-2"
    pair = {**MINIMAL, "primaryRegion": "eu-west-1", "secondaryRegion": "us-east-1"}
    assert config.load(pair).control_witness_region == ""  # a last-writer-wins table, one write replica
    (problem,) = problems({**pair, "controlWitnessRegion": "us-east-2"})
    assert problem.startswith("controlWitnessRegion: eu-west-1 and us-east-1 are not in one region set")
    (problem,) = problems({**MINIMAL, "controlWitnessRegion": "us-west-2"})
    assert problem.startswith("controlWitnessRegion: 'us-west-2' must be a third region of the set")


def test_autopilot_keys_become_the_topologys_autopilot_section_checked_like_the_runbooks_do() -> None:
    # Not set: no section (the runbooks' default, off, applies) - the export is unchanged.
    assert config.load(MINIMAL).autopilot is None
    # Set (Pulumi hands numbers out as strings): the whole section, every field, as the topology has it.
    cfg = config.load({**MINIMAL, "autopilotMode": "recommend", "autopilotForSeconds": "120"})
    assert cfg.autopilot == {
        "mode": "recommend",
        "observers_required": 3,
        "for_seconds": 120,
        "block_after_seconds": 3600,
        "max_per_day": 1,
    }
    found = problems({**MINIMAL, "autopilotMode": "auto", "autopilotObserversRequired": 1})
    assert any(
        p.startswith("autopilotMode: 'auto': Input should be 'off', 'recommend' or 'act'") for p in found
    ), found
    assert any(
        p.startswith("autopilotObserversRequired: 1: Input should be greater than or equal to 2")
        for p in found
    ), found


def test_the_exported_autopilot_section_is_the_one_the_runbooks_read() -> None:
    from infra.topology_document import RegionOutputs, StackOutputs, topology_document
    from mldr.topology import Autopilot, AutopilotMode

    def exported(raw: dict[str, Any]) -> dict[str, Any]:
        cfg = config.load(raw)
        names = [d.name for d in cfg.datasets]
        per_region = {n: {r: f"{n}-{r}" for r in cfg.regions} for n in names}
        outputs = StackOutputs(
            regions={
                r: RegionOutputs(*(f"{f}-{r}" for f in ("b", "t", "e", "h", "c", "s"))) for r in cfg.regions
            },
            dataset_buckets=per_region,
            dataset_keys=per_region,
            dataset_roles={n: f"role-{n}" for n in names},
            hosted_zone_id="Z1",
            record_name="inference.example.com",
            control_table="mldr-control",
        )
        return topology_document(cfg, outputs)

    assert "autopilot" not in exported(MINIMAL), "no key set: the export is unchanged"
    section = Autopilot.model_validate(
        exported({**MINIMAL, "autopilotMode": "act", "autopilotMaxPerDay": 2})["autopilot"]
    )
    assert (section.mode, section.max_per_day, section.for_seconds) == (AutopilotMode.ACT, 2, 60)
