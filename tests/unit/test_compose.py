"""docker-compose.yaml is valid Compose and has what the team setup needs (Docker has no engine here,
so it is validated, not run): the Airflow 3 services on Postgres, the sandbox, the mounts, pinned
versions and the sandbox's connections wired into every Airflow service."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
MOUNTS = {
    "./dags": "/opt/airflow/dags",
    "./plugins": "/opt/airflow/plugins",
    "./runbooks": "/opt/airflow/runbooks",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    return document


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """{source: target} of a service's short-syntax volumes (mode suffix dropped)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        out[source] = target
    return out


def test_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256, "the vendored schema changed"
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    # and the validator does reject what Compose rejects (a schema that accepts anything proves nothing)
    broken = {**compose, "services": {**compose["services"], "postgres": {"image": 16, "restartt": "always"}}}
    assert list(validator.iter_errors(broken))


def test_has_the_airflow_3_services_on_postgres_and_the_sandbox(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "sandbox", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    assert [services[name]["command"] for name in AIRFLOW_SERVICES] == [
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
    ]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        # shared generated secrets (JWT): tasks are refused by an API server with another secret
        assert env["AIRFLOW_CONFIG"].startswith("/opt/airflow/config/")
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "sandbox": {"condition": "service_healthy"},
            "airflow-init": {"condition": "service_completed_successfully"},
        }
        assert "healthcheck" in services[name], name
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert services["sandbox"]["command"] == ["python", "-m", "mldr.sandbox.serve"]
    assert services["sandbox"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "mldr.sandbox.serve",
        "--check",
    ]


def test_mounts_dags_plugins_and_runbooks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        have = mounts(services[name])
        for source, target in MOUNTS.items():
            assert have.get(source) == target, f"{name} must mount {source} at {target}"
    # the runbook DAGs read their doc_md from runbooks/ next to plugins/ (runbook_dag.runbook_doc)
    assert Path(MOUNTS["./runbooks"]).parent == Path(MOUNTS["./plugins"]).parent
    assert mounts(services["sandbox"])["./plugins"] == "/opt/airflow/plugins"
    volumes = set(compose["volumes"])
    for name, service in services.items():
        for source in mounts(service):
            assert source.startswith("./") or source in volumes, f"{name}: undeclared volume {source}"


def test_versions_are_pinned_and_match_the_lock_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert re.search(r":\d[\w.-]*$", image), f"{name}: image {image} has no pinned version tag"
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    locked = locked_versions()
    assert f"FROM apache/airflow:{locked['apache-airflow']}-python3.11" in dockerfile
    pins = dict(re.findall(r'"([a-z-]+)(?:\[\w+\])?==([\w.]+)"', dockerfile))
    assert pins == {
        "apache-airflow": locked["apache-airflow"],
        "moto": locked["moto"],
        "scikit-learn": locked["scikit-learn"],
    }
    airflow_image = compose["services"]["airflow-apiserver"]["image"]
    assert airflow_image.endswith(f":{locked['apache-airflow']}-python3.11")


def test_airflow_services_use_the_sandbox_connections(compose: dict[str, Any]) -> None:
    """The sandbox writes AIRFLOW_CONN_* and MLDR_TOPOLOGY (127.0.0.1 URLs) to airflow.env in its
    volume: each Airflow service shares its network namespace and loads that file first."""
    services = compose["services"]
    sandbox_dir = services["sandbox"]["environment"]["MLDR_SANDBOX_DIR"]
    assert mounts(services["sandbox"])["mldr-sandbox"] == sandbox_dir
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["network_mode"] == "service:sandbox", name
        assert "ports" not in service, f"{name}: ports of a shared network namespace go on the sandbox"
        assert service["environment"]["MLDR_SANDBOX_DIR"] == sandbox_dir
        assert mounts(service)["mldr-sandbox"] == sandbox_dir
        script = " ".join(service["entrypoint"]).replace("$$", "$")  # Compose's escape for a literal $
        assert '. "${MLDR_SANDBOX_DIR}/airflow.env"' in script and 'exec /entrypoint "$@"' in script
        assert (
            service["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
            == "http://localhost:8080/execution/"
        )
    assert services["sandbox"]["ports"] == ["${AIRFLOW_HOST_IP:-127.0.0.1}:${AIRFLOW_PORT:-8080}:8080"]


def default_of(value: str) -> str:
    """A Compose value with every `${VAR:-default}` replaced by its default (nothing set)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_ui_binds_this_machine_only_by_default(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip, _host_port, _container_port = default_of(str(port)).split(":")
            assert host_ip == "127.0.0.1", f"{name}: {port} publishes on every interface by default"


def test_no_empty_fernet_key_and_init_refuses_to_finish_without_one(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        assert "AIRFLOW__CORE__FERNET_KEY" not in env, (
            f"{name}: an env Fernet key overrides the one generated into airflow.cfg ('' = no encryption)"
        )
    script = "\n".join(compose["services"]["airflow-init"]["command"]).replace("$$", "$")
    assert 'if [ -z "$(airflow config get-value core fernet_key' in script and "exit 1" in script


def test_no_silent_admin_admin(compose: dict[str, Any]) -> None:
    init = compose["services"]["airflow-init"]
    assert init["environment"]["AIRFLOW_ADMIN_PASSWORD"] == "${AIRFLOW_ADMIN_PASSWORD:-}", (
        "no default password"
    )
    assert "python -m mldr.airflow.compose_login" in "\n".join(init["command"])


def test_mldr_is_installed_in_the_image_and_the_mount_comes_first(compose: dict[str, Any]) -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (?:--chown=\S+ )?(.+) (\S+)$", dockerfile, re.MULTILINE)
    sources = [source for group, _ in copies for source in group.split()]
    assert "plugins/mldr" in sources and "pyproject.toml" in sources
    assert all((REPO / source).exists() for source in sources), sources
    assert re.search(r"pip install .*--no-deps /opt/mldr/src && mldr --help", dockerfile)
    for name in (*AIRFLOW_SERVICES, "airflow-init", "sandbox"):
        env = compose["services"][name]["environment"]
        assert env["PYTHONPATH"] == MOUNTS["./plugins"], f"{name}: the mounted plugins/ must win"


def test_first_start_generates_a_password_and_admin_is_warned_about(tmp_path: Path) -> None:
    from mldr.airflow.compose_login import ensure_login

    generated = tmp_path / "generated.json"
    (line,) = ensure_login(generated, None)
    password = json.loads(generated.read_text())["admin"]
    assert len(password) >= 12 and password in line and "generated" in line
    # later starts keep it, and say where it is
    assert ensure_login(generated, None) == [f"Airflow UI login: admin, password in {generated}"]

    weak = tmp_path / "weak.json"
    lines = ensure_login(weak, "admin")
    assert json.loads(weak.read_text()) == {"admin": "admin"}
    assert lines[-1].startswith("WARNING: the Airflow UI password of 'admin' is 'admin'")
    assert ensure_login(weak, None)[-1].startswith("WARNING"), "warned at every start, not only the first"
