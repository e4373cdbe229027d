"""The docker-compose UI login: a generated password unless one is given, and a warning for admin/admin.

`airflow-init` (docker-compose.yaml) runs `python -m mldr.airflow.compose_login` before any
Airflow service starts. It writes Airflow's simple auth manager passwords file once: with
`AIRFLOW_ADMIN_PASSWORD` when set, else with a generated password, printed once and kept in the
`airflow-config` volume. On every start it prints where the password is, and a warning while the
password is `admin` (anyone who reaches the UI can trigger a failover).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

USER = "admin"
WEAK_PASSWORDS = frozenset({"admin", "password", "airflow", ""})


def ensure_login(passwords_file: Path, requested: str | None) -> list[str]:
    """Write the passwords file if it does not exist yet; the lines to print about the login."""
    lines: list[str] = []
    if not passwords_file.exists() or not passwords_file.read_text().strip():
        password = requested or secrets.token_urlsafe(12)
        passwords_file.write_text(json.dumps({USER: password}))
        passwords_file.chmod(0o640)
        origin = "AIRFLOW_ADMIN_PASSWORD" if requested else "generated"
        lines.append(f"Airflow UI login: {USER} / {password} ({origin}; kept in {passwords_file})")
    else:
        if requested:
            lines.append(
                f"AIRFLOW_ADMIN_PASSWORD is ignored: the password was set at the first start; change it "
                f"in {passwords_file}, or `docker compose down -v` to start over"
            )
        lines.append(f"Airflow UI login: {USER}, password in {passwords_file}")
    current = json.loads(passwords_file.read_text()).get(USER, "")
    if current in WEAK_PASSWORDS:
        lines.append(
            f"WARNING: the Airflow UI password of {USER!r} is {current!r}: anyone who reaches the UI "
            "can trigger a failover. Set another in "
            f"{passwords_file} (or AIRFLOW_ADMIN_PASSWORD before the first start)."
        )
    return lines


def main() -> int:
    path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    for line in ensure_login(path, os.environ.get("AIRFLOW_ADMIN_PASSWORD") or None):
        print(line, file=sys.stderr if line.startswith("WARNING") else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
