"""The break-glass commands import none of the extras' packages: every core module of mldr, and the
CLI with each break-glass command's help, load with Airflow, Pulumi, moto, scikit-learn, FastAPI,
boto3... blocked. (A fresh venv with `pip install .` is tested in tests/integration/.)"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.light_install import BREAK_GLASS, core_imports

REPO = Path(__file__).resolve().parents[2]


def test_core_modules_and_break_glass_commands_import_no_extra() -> None:
    # run from an empty directory so that only the installed mldr (plugins/, editable) is found
    with tempfile.TemporaryDirectory() as empty:
        result = core_imports(sys.executable, cwd=Path(empty))
    assert result["failed"] == []
    assert result["heavy"] == []
    # the walk did reach the break-glass code, not an empty package
    assert {"mldr.cli_ops", "mldr.cli_checks", "mldr.cloud.control", "mldr.runbooks.failover"} <= set(
        result["checked"]
    )
    assert {"mldr.checks.verification", "mldr.checks.replication", "mldr.sandbox.location"} <= set(
        result["checked"]
    )
    for command in BREAK_GLASS:
        code, text = result["helps"][command]
        assert code == 0 and "Examples:" in text and "Exit codes:" in text, command


def test_a_command_does_not_import_the_drill_to_build_its_flags() -> None:
    """Every `mldr` command builds the whole parser, the drill's `--scenario` choices included:
    importing the drill package there (runner, health checks, HTTP) cost each command ~0.4 s."""
    code = (
        "import sys; from mldr.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith('mldr.runbooks')))"
    )
    plugins = str(Path(__file__).resolve().parents[2] / "plugins")
    env = {**os.environ, "PYTHONPATH": plugins}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "mldr.runbooks.drill.runner" not in out and "mldr.runbooks.failover" not in out, out
