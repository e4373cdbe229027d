"""docker/inference.Dockerfile builds the image infra/ deploys (there is no Docker engine here, so
it is validated statically): a pinned base, COPY sources that exist, versions from uv.lock, and an
entrypoint module that imports and serves the sandbox's inference app from the task's environment."""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from mldr.sandbox import inference_container as container

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "inference.Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
            pending = ""
    return out


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def locked() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def test_base_image_is_pinned(parsed: list[tuple[str, str]]) -> None:
    (base,) = [args for keyword, args in parsed if keyword == "FROM"]
    assert "@sha256:" in base or re.search(r":\d+\.\d+\.\d+[\w.-]*$", base), (
        f"FROM {base}: pin a full version"
    )
    assert not base.endswith(":latest")


def test_copy_sources_exist_in_the_build_context(parsed: list[tuple[str, str]]) -> None:
    copies = [shlex.split(args) for keyword, args in parsed if keyword == "COPY"]
    assert copies, "the image must copy mldr from this repository"
    for *sources, _target in copies:
        for source in sources:
            assert not source.startswith("--"), f"COPY {source}: no --from stages expected"
            assert (REPO / source).exists(), f"COPY {source}: not in the repository (the build context)"
    assert any("plugins/mldr" in sources for *sources, _ in copies)
    # and .dockerignore, which keeps .venv and the like out of the context, keeps them in
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for *sources, _target in copies:
        for source in sources:
            parts = Path(source).parts
            hits = [
                p
                for p in ignored
                if any(fnmatch.fnmatch("/".join(parts[: i + 1]), p) for i in range(len(parts)))
            ]
            assert not hits, f"COPY {source}: excluded from the build context by .dockerignore {hits}"


CONSTRAINTS = REPO / "docker" / "inference-constraints.txt"
#: What the server imports (mldr's core and the sandbox extra's server part), pip install's names.
SERVER_NEEDS = {"botocore", "pydantic", "httpx", "jinja2", "boto3", "fastapi", "uvicorn", "scikit-learn"}


def test_every_version_is_the_lock_files(parsed: list[tuple[str, str]]) -> None:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            pins[name] = version
    versions = locked()
    assert {name: versions.get(name) for name in pins} == pins, "regenerate docker/inference-constraints.txt"
    (install,) = [args for keyword, args in parsed if keyword == "RUN" and "-c /tmp/constraints.txt" in args]
    installed = set(install.split("-c /tmp/constraints.txt", 1)[1].split())
    assert installed == SERVER_NEEDS and installed <= set(pins), (
        "every package pinned through the constraints"
    )
    assert not re.search(r"[a-z]==\d", DOCKERFILE.read_text()), "versions live in the constraints file only"


def test_entrypoint_is_the_container_module_and_it_serves_the_sandbox_app(
    parsed: list[tuple[str, str]],
) -> None:
    (entrypoint,) = [json.loads(args) for keyword, args in parsed if keyword == "ENTRYPOINT"]
    assert entrypoint[:2] == ["python", "-m"]
    module = importlib.import_module(entrypoint[2])
    assert module is container and callable(module.main)
    # the same app the sandbox runs in each region, not a second server
    assert "from mldr.sandbox.inference import create_app" in Path(container.__file__).read_text()
    users = [args for keyword, args in parsed if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the task must not run as root"


TASK_ENV = {
    "MLDR_REGION": "us-west-2",
    "MLDR_MODEL_BUCKET": "model-artifacts-us-west-2-abc",
    "MLDR_MODEL_PREFIX": "",
    "PORT": "8080",
}


def test_settings_come_from_the_task_environment() -> None:
    settings = container.settings_from_env(TASK_ENV)
    assert (settings.region, settings.bucket, settings.port) == (
        "us-west-2",
        TASK_ENV["MLDR_MODEL_BUCKET"],
        8080,
    )
    assert settings.s3_endpoint is None, "in ECS, S3 is AWS's, with the task role's credentials"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"MLDR_REGION": ""}, "MLDR_REGION is not set"),
        ({"PORT": "http"}, "PORT='http' is not a port number"),
        ({"MLDR_MODEL_PREFIX": "registry/"}, "give the model_artifacts dataset no prefix"),
    ],
    ids=["no-region", "bad-port", "prefix"],
)
def test_a_wrong_environment_is_refused_by_name(change: dict[str, str], expected: str) -> None:
    with pytest.raises(container.ContainerConfigError, match=re.escape(expected)):
        container.settings_from_env({**TASK_ENV, **change})


def test_main_exits_2_with_the_problem_before_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in TASK_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        container.main()
    assert exit_.value.code == 2
    assert "MLDR_REGION is not set; MLDR_MODEL_BUCKET is not set" in capsys.readouterr().err
