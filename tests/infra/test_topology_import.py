"""mldr.topology_import: reading what `pulumi stack output --json` writes (not the Airflow DB write)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mldr.errors import ConfigurationError, TopologyError, TopologyNotFound
from mldr.topology import TOPOLOGY_VARIABLE
from mldr.topology_import import import_to_airflow, topology_from_pulumi_json, topology_from_stack_output

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "topology.json"


@pytest.fixture
def document() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_stack_output_with_topology_as_object(tmp_path: Path, document: dict[str, Any]) -> None:
    path = write(tmp_path, {"topology": document, "drOperatorRoleArn": "arn:aws:iam::1:role/x"})
    topology = topology_from_pulumi_json(path)
    assert topology.name == "example" and topology.primary_region == "us-east-1"


def test_stack_output_with_topology_as_json_text(tmp_path: Path, document: dict[str, Any]) -> None:
    path = write(tmp_path, {"topology": json.dumps(document)})
    assert topology_from_pulumi_json(path).dataset("model-artifacts").rpo_seconds == 300


def test_bare_document_from_stack_output_topology(tmp_path: Path, document: dict[str, Any]) -> None:
    assert topology_from_pulumi_json(write(tmp_path, document)).secondary_region == "us-west-2"


def test_invalid_document_names_the_file_and_the_field(tmp_path: Path, document: dict[str, Any]) -> None:
    del document["regions"]["us-west-2"]["health_check_id"]
    path = write(tmp_path, {"topology": document})
    with pytest.raises(TopologyError) as failure:
        topology_from_pulumi_json(path)
    assert "regions.us-west-2.health_check_id: missing" in failure.value.problems
    assert str(path) in str(failure.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyNotFound, match="pulumi stack output --json"):
        topology_from_pulumi_json(tmp_path / "nope.json")


def test_not_json(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="not valid JSON"):
        topology_from_pulumi_json(write(tmp_path, "Current stack outputs (2):"))


def test_outputs_without_topology(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as failure:
        topology_from_pulumi_json(write(tmp_path, {"endpoints": {}, "drOperatorRoleArn": "x"}))
    (problem,) = failure.value.problems
    assert "no 'topology' output (outputs found: drOperatorRoleArn, endpoints)" in problem


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"topology": "[secret]"}, "--show-secrets"),
        ({"topology": 42}, "got int"),
        (["not", "an", "object"], "got list"),
    ],
)
def test_unusable_stack_output(data: Any, expected: str) -> None:
    with pytest.raises(TopologyError, match=expected):
        topology_from_stack_output(data)


def test_import_to_airflow_sets_the_variable(
    monkeypatch: pytest.MonkeyPatch, document: dict[str, Any]
) -> None:
    """Only the call is checked: a stand-in Variable, no Airflow metadata database."""
    calls: list[tuple[str, str]] = []

    class Variable:
        @staticmethod
        def set(key: str, value: str, description: str | None = None) -> None:
            calls.append((key, value))

    monkeypatch.setitem(sys.modules, "airflow.models", types.SimpleNamespace(Variable=Variable))
    topology = topology_from_stack_output({"topology": document})
    message = import_to_airflow(topology)
    ((key, value),) = calls
    assert key == TOPOLOGY_VARIABLE == "mldr_topology"
    assert json.loads(value)["name"] == "example"
    assert "mldr_topology set" in message and "us-east-1" in message


def test_import_without_airflow_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, document: dict[str, Any]
) -> None:
    monkeypatch.setitem(sys.modules, "airflow.models", None)
    with pytest.raises(ConfigurationError, match="airflow variables set mldr_topology"):
        import_to_airflow(topology_from_stack_output(document))
