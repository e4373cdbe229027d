"""Load the topology Pulumi exports into Airflow: `mldr topology import --from-pulumi-json FILE`.

`FILE` is what `pulumi stack output --json` prints (an object whose `topology` key holds the
document, as an object or as JSON text), or the document alone (`pulumi stack output topology
--json`). The document is validated with `parse_topology` before anything is written, so a
malformed export never reaches the runbooks. The equivalent without this library:

    airflow variables set mldr_topology "$(pulumi stack output topology --json)"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mldr.errors import ConfigurationError, MldrError, TopologyError, TopologyNotFound
from mldr.topology import TOPOLOGY_VARIABLE, Topology, parse_topology

#: The stack output that holds the document (infra/__main__.py exports it under this name).
STACK_OUTPUT = "topology"
#: How `pulumi stack output --json` prints a secret value unless asked to show secrets.
SECRET_PLACEHOLDER = "[secret]"


def topology_from_stack_output(data: Any, *, source: str = "pulumi stack output") -> Topology:
    """Validate the topology found in parsed `pulumi stack output --json` data (or a bare document)."""
    if not isinstance(data, dict):
        raise TopologyError(
            [
                "(document): expected a JSON object from `pulumi stack output --json`, "
                f"got {type(data).__name__}"
            ],
            source=source,
        )
    if STACK_OUTPUT in data:
        document = data[STACK_OUTPUT]
        source = f"{source} (output {STACK_OUTPUT!r})"
        if document == SECRET_PLACEHOLDER:
            raise TopologyError(
                [
                    f"{STACK_OUTPUT}: the output is marked secret; "
                    "rerun with `pulumi stack output --json --show-secrets`"
                ],
                source=source,
            )
        if not isinstance(document, dict | str):
            raise TopologyError(
                [
                    f"{STACK_OUTPUT}: expected the topology document (an object or JSON text), "
                    f"got {type(document).__name__}"
                ],
                source=source,
            )
        return parse_topology(document, source=source)
    if "version" in data:
        return parse_topology(data, source=source)
    outputs = ", ".join(sorted(data)) or "none"
    raise TopologyError(
        [
            f"(document): no {STACK_OUTPUT!r} output (outputs found: {outputs}); expected the output of "
            "`pulumi stack output --json` for a stack of infra/, or `pulumi stack output topology --json`"
        ],
        source=source,
    )


def topology_from_pulumi_json(path: str | Path) -> Topology:
    """Read and validate the topology from a file written by `pulumi stack output [topology] --json`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TopologyNotFound(
            f"{path} does not exist; write it with `pulumi stack output --json > {path}` in infra/"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TopologyError([f"(document): not valid JSON: {exc}"], source=str(path)) from None
    return topology_from_stack_output(data, source=str(path))


def import_to_airflow(topology: Topology) -> str:
    """Store the validated document in the Airflow Variable `mldr_topology`; return what was done.

    Needs Airflow's metadata database (run where `airflow variables set` would work).
    """
    try:
        from airflow.models import Variable
    except ImportError as exc:
        raise ConfigurationError(
            f"apache-airflow is not importable here ({exc}); run this where Airflow is installed, or use "
            f'`airflow variables set {TOPOLOGY_VARIABLE} "$(pulumi stack output topology --json)"`'
        ) from None
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # pragma: no cover - Airflow always ships SQLAlchemy
        SQLAlchemyError = OSError  # type: ignore[misc,assignment]
    try:
        Variable.set(
            TOPOLOGY_VARIABLE,
            topology.to_json(),
            description=f"mldr DR topology {topology.name!r}, imported from Pulumi; read by the DR DAGs",
        )
    except SQLAlchemyError as exc:
        raise MldrError(
            f"could not write Airflow Variable {TOPOLOGY_VARIABLE}: {exc.__class__.__name__}: {exc}. "
            "Check AIRFLOW_HOME / the metadata database connection (`airflow db check`)."
        ) from exc
    return (
        f"Airflow Variable {TOPOLOGY_VARIABLE} set: topology {topology.name!r}, "
        f"primary {topology.primary_region}, "
        f"secondary {topology.secondary_region}, {len(topology.datasets)} dataset(s), "
        f"DNS name {topology.inference.dns_name}"
    )
