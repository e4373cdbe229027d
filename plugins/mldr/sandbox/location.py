"""Where the sandbox keeps its state, apart from the sandbox itself.

The break-glass CLI reads the running sandbox's connections from here (`mldr status` right after
`mldr sandbox up`) in an install without the sandbox extra, so this module imports nothing of it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

#: Environment variable naming the sandbox's state directory (default `.sandbox`).
SANDBOX_DIR_ENV = "MLDR_SANDBOX_DIR"


def sandbox_dir() -> Path:
    return Path(os.environ.get(SANDBOX_DIR_ENV, ".sandbox")).resolve()


#: The sandbox's connections, as a file a shell can `source` (`.sandbox/airflow.env`).
ENV_FILE = "airflow.env"


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """`export NAME=value` lines, quoted for the shell (a value may hold JSON)."""
    path.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items()))


def read_env_file(path: str | Path) -> dict[str, str]:
    """The variables `write_env_file` wrote, unquoted as the shell would."""
    env: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = "".join(shlex.split(value)) if value else ""
    return env
