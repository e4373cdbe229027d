"""`pip install mldr` with no extras, in a fresh venv: under 150 MB, `mldr --version`, the
break-glass commands' help, no extra's package importable or imported - and the commands work
against the running sandbox (status, history, a failover dry run, verify), as an operator would
run them where Airflow is down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from mldr.sandbox.manager import Sandbox
from tests.light_install import BREAK_GLASS, HEAVY, core_imports

REPO = Path(__file__).resolve().parents[2]
LIMIT_MB = 150

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.fail("uv not found: `make install` installs it")
    return uv


def _size_mb(root: Path) -> float:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total / 1e6


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("light") / "venv"
    env = {**os.environ, "UV_LINK_MODE": "copy"}  # files of its own: the size is what pip would leave
    env.pop("VIRTUAL_ENV", None)
    for command in (
        [_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)],
        [_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(REPO)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
    return venv


def mldr(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin" / "mldr"), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_the_light_install_is_small_and_has_no_extra(light_venv: Path, tmp_path: Path) -> None:
    size = _size_mb(light_venv)
    assert size < LIMIT_MB, f"`pip install mldr` (no extras) takes {size:.0f} MB, over {LIMIT_MB} MB"
    python = light_venv / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "[]"  # none of the extras came along as a dependency
    result = core_imports(python, cwd=tmp_path)
    assert result["failed"] == [] and result["heavy"] == []
    assert "mldr.cli_ops" in result["checked"]
    for command in BREAK_GLASS:
        code, text = result["helps"][command]
        assert code == 0 and "Exit codes:" in text, command
    done = mldr(light_venv, "--version")
    assert done.returncode == 0 and done.stdout == f"mldr {version('mldr')}\n"


def json_of(done: subprocess.CompletedProcess[str], *codes: int) -> Any:
    assert done.returncode in codes, done.stderr
    return json.loads(done.stdout)  # all of stdout is one document


def test_break_glass_commands_run_against_the_sandbox(light_venv: Path, sandbox: Sandbox) -> None:
    state = sandbox.state
    assert state is not None
    status = json_of(mldr(light_venv, "status", "--json"), 0)
    regions = {state.primary, state.secondary}
    assert status["active_region"] in regions
    assert isinstance(json_of(mldr(light_venv, "history", "--limit", "3", "--json"), 0), list)
    (other,) = regions - {status["active_region"]}
    plan = json_of(
        mldr(
            light_venv,
            "failover",
            "--to",
            other,
            "--mode",
            "planned",
            "--reason",
            "light install dry run",
            "--dry-run",
            "--json",
        ),
        0,
    )
    assert plan["status"] == "planned"
    after = json_of(mldr(light_venv, "status", "--json"), 0)
    assert after["active_region"] == status["active_region"]  # a dry run changes nothing
    report = json_of(mldr(light_venv, "verify", "--no-report", "--sample", "1", "--json"), 0, 1)
    assert {d["name"] for d in report["datasets"]} == {"training-data", "features", "model-artifacts"}
    refused = json_of(mldr(light_venv, "sandbox", "status", "--json"), 2)
    assert refused["error"]["type"] == "MissingExtra"
