"""The sandbox's `airflow.env`: what `mldr`, the bench scripts and the tests read is what the
sandbox wrote, and what a shell sourcing it would see."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mldr.sandbox.location import read_env_file, write_env_file

VALUES = {
    "AIRFLOW_CONN_MLDR_SANDBOX_US_EAST_1": json.dumps(
        {"conn_type": "aws", "login": "testing", "extra": {"endpoint_url": "http://127.0.0.1:5000"}}
    ),
    "MLDR_TOPOLOGY": "/tmp/a dir with spaces/topology.json",
    "MLDR_OPERATOR": "o'brien",  # a quote the old writer ('{v}') turned into a broken file
    "EMPTY": "",
}


def test_what_is_written_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "airflow.env"
    write_env_file(path, VALUES)
    assert read_env_file(path) == VALUES


def test_a_shell_sourcing_the_file_sees_the_same_values(tmp_path: Path) -> None:
    path = tmp_path / "airflow.env"
    write_env_file(path, VALUES)
    script = f"source {path} && " + " && ".join(f'printf "%s\\0" "${name}"' for name in VALUES)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("\0")[:-1] == list(VALUES.values())
