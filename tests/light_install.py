"""What the break-glass install (`pip install mldr`, no extras) must be able to import, shared by
tests/unit/test_light_install.py (the dev venv, heavy packages blocked) and
tests/integration/test_light_install_venv.py (a fresh venv where they are not installed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

#: Packages that belong to an extra (or come only with one): never imported by the core.
HEAVY = (
    "airflow",
    "pulumi",
    "pulumi_aws",
    "moto",
    "sklearn",
    "numpy",
    "scipy",
    "pandas",
    "fastapi",
    "starlette",
    "uvicorn",
    "werkzeug",
    "flask",
    "boto3",
)

#: Where the code that needs an extra lives; every other module of mldr is the core.
EXTRA_HOMES = (
    "mldr.sandbox.",  # the sandbox extra (but mldr.sandbox.location: where a running one keeps state)
    "mldr.airflow",
    "mldr.ml.train",
    "mldr.ml.pipeline",
    "mldr.demo",
    "mldr.drill",
    "mldr.runbooks.drill",
    "mldr.chaos",  # the schedule tester drives the sandbox
)
CORE_EXCEPTIONS = ("mldr.sandbox.location",)

BREAK_GLASS = ("status", "failover", "failback", "history", "verify", "lag", "restore")

# Run in a fresh interpreter: block the heavy packages, import every core module and build the
# CLI with each break-glass command's help, then report what failed and what heavy got loaded.
SNIPPET = f"""
import importlib, io, json, pkgutil, sys, contextlib
HEAVY, HOMES, KEEP = {HEAVY!r}, {EXTRA_HOMES!r}, {CORE_EXCEPTIONS!r}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError(f"{{name}} is imported by the core (it belongs to an extra)")
sys.meta_path.insert(0, Blocker())
import mldr
failed, checked = [], []
for info in pkgutil.walk_packages(mldr.__path__, "mldr.", onerror=lambda n: failed.append((n, "package"))):
    if info.name.startswith(HOMES) and info.name not in KEEP:
        continue
    try:
        importlib.import_module(info.name)
        checked.append(info.name)
    except ImportError as exc:
        failed.append((info.name, str(exc)))
from mldr.cli import main
helps = {{}}
for command in {BREAK_GLASS!r}:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([command, "--help"])
        except SystemExit as exc:
            helps[command] = [exc.code, out.getvalue()]
heavy = sorted({{n.split(".")[0] for n in sys.modules}} & set(HEAVY))
print(json.dumps({{"failed": failed, "checked": checked, "heavy": heavy, "helps": helps}}))
"""


def core_imports(python: str | Path, *, cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", SNIPPET], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result
