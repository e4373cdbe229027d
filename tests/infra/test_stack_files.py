"""Every committed stack file passes the Pulumi CLI's own config check.

The CLI cannot be downloaded on our build machines, so its check is reproduced here: a key the
project declares with a `type` and no `default` must be set by every stack ("Stack 'dev' is
missing configuration value 'mldr:hostedZoneId'"), and a set value must have the declared type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
PROJECT = yaml.safe_load((INFRA / "Pulumi.yaml").read_text())
STACK_FILES = sorted(INFRA.glob("Pulumi.*.yaml"))

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
}


def pulumi_config_problems(project: dict[str, Any], stack_name: str, stack: dict[str, Any]) -> list[str]:
    """What `pulumi up` would refuse in `stack` before running the program."""
    namespace = project["name"]
    values = stack.get("config") or {}
    problems: list[str] = []
    for key, declared in (project.get("config") or {}).items():
        full = f"{namespace}:{key}"
        if not isinstance(declared, dict) or "type" not in declared:
            continue  # a plain value (e.g. `datasets: {value: ...}`) is a default, never required
        if full not in values:
            if "default" not in declared:
                problems.append(f"Stack '{stack_name}' is missing configuration value '{full}'")
            continue
        value = values[full]
        expected = _TYPES[declared["type"]]
        if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
            problems.append(
                f"Stack '{stack_name}' config '{full}': {value!r} is not of type {declared['type']}"
            )
    return problems


def test_there_are_stack_files_to_check() -> None:
    assert STACK_FILES, "no infra/Pulumi.<stack>.yaml committed"


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_committed_stack_passes_pulumis_config_check(path: Path) -> None:
    stack_name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    assert pulumi_config_problems(PROJECT, stack_name, yaml.safe_load(path.read_text())) == []


def test_the_check_refuses_what_pulumi_refuses() -> None:
    project = {
        "name": "mldr",
        "config": {
            "dnsName": {"type": "string"},
            "hostedZoneId": {"type": "string", "default": ""},
            "activeCapacity": {"type": "integer", "default": 2},
            "datasets": {"value": []},
        },
    }
    assert pulumi_config_problems(project, "dev", {"config": {"mldr:activeCapacity": "two"}}) == [
        "Stack 'dev' is missing configuration value 'mldr:dnsName'",
        "Stack 'dev' config 'mldr:activeCapacity': 'two' is not of type integer",
    ]
    assert pulumi_config_problems(project, "dev", {"config": {"mldr:dnsName": "a.example.com"}}) == []
