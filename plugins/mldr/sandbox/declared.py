"""What infra/ declares for the sandbox's stack, applied to the sandbox's own resources.

`declared.json` beside this module is the Pulumi program's output for `infra/Pulumi.sandbox.yaml`
under Pulumi's mocks (`python -m infra.under_mocks` writes it; a test in tests/infra holds it to
the program): the DR operator role's policy, the replication roles' policies and the topology
export. The mocks name resources their own way (`training-data-us-east-1-3c0e110`); the sandbox's
are named by its provisioning. Both topology documents describe the same resources at the same
places, so walking them side by side maps each declared name to the sandbox's, and a policy is
rewritten with that map - its statements, actions and conditions stay exactly as declared.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("declared.json")


@cache
def snapshot() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return data


def _walk(declared: Any, actual: Any, names: dict[str, str], regions: dict[str, str], same: set[str]) -> None:
    if isinstance(declared, dict) and isinstance(actual, dict):
        for key, value in declared.items():
            key_here = regions.get(key, key)
            if key_here in actual:
                _walk(value, actual[key_here], names, regions, same)
    elif isinstance(declared, list) and isinstance(actual, list):
        by_name = {item.get("name"): item for item in actual if isinstance(item, dict)}
        for i, value in enumerate(declared):
            if isinstance(value, dict) and "name" in value:
                if value["name"] in by_name:
                    _walk(value, by_name[value["name"]], names, regions, same)
            elif i < len(actual):
                _walk(value, actual[i], names, regions, same)
    elif isinstance(declared, str) and isinstance(actual, str) and declared:
        if declared == actual:
            same.add(declared)
        else:
            names.setdefault(declared, actual)


def name_map(declared_topology: dict[str, Any], sandbox_topology: dict[str, Any]) -> dict[str, str]:
    """Each name (bucket, table, key ARN, topic ARN, ...) the program declared -> the sandbox's."""
    regions = {
        declared_topology["primary_region"]: sandbox_topology["primary_region"],
        declared_topology["secondary_region"]: sandbox_topology["secondary_region"],
    }
    names: dict[str, str] = {}
    same: set[str] = set()
    _walk(declared_topology, sandbox_topology, names, regions, same)
    # A name the sandbox keeps somewhere is its own too: where the two documents differ around it
    # (the control table's replicas, both on the sandbox's global server), it is not renamed.
    for name in same:
        names.pop(name, None)
    # ARNs the document does not spell out (the table's, per region) carry the region itself
    names.update({f":{d}:": f":{s}:" for d, s in regions.items() if d != s})
    return names


def rewrite(policy: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """`policy` with every declared name replaced by the sandbox's (longest names first)."""
    text = json.dumps(policy)
    for declared in sorted(names, key=len, reverse=True):
        text = text.replace(declared, names[declared])
    result: dict[str, Any] = json.loads(text)
    return result


def operator_policy(sandbox_topology: dict[str, Any]) -> dict[str, Any]:
    """The DR operator role's policy as infra/ declares it, naming the sandbox's resources."""
    declared = snapshot()
    return rewrite(declared["operator_policy"], name_map(declared["topology"], sandbox_topology))


def replication_policy(sandbox_topology: dict[str, Any], dataset: str) -> dict[str, Any]:
    """`dataset`'s replication role policy as infra/ declares it, naming the sandbox's resources."""
    declared = snapshot()
    policies = declared["replication_policies"]
    if dataset not in policies:
        raise KeyError(
            f"infra/ declares no replication policy for dataset {dataset!r} (has: {', '.join(policies)})"
        )
    return rewrite(policies[dataset], name_map(declared["topology"], sandbox_topology))
