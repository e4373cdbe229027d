"""The `mldr` command as a process: what it printed arrives whole, and its exit code is kept.

`mldr.cli.run` ends the process without the interpreter's orderly teardown; these run it the
way a shell does, with stdout a pipe (block-buffered), and read what came out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def mldr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mldr.cli", *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


def test_output_written_to_a_pipe_arrives_whole_with_exit_code_0() -> None:
    done = mldr("topology", "schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)  # the whole document, flushed before the process ended
    assert schema["title"] == "mldr topology document"
    assert done.stdout.endswith("}\n")  # down to print's last newline, still buffered at the end


def test_bad_input_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    bad = tmp_path / "topology.json"
    bad.write_text('{"version": 1}')
    done = mldr("topology", "validate", str(bad))
    assert done.returncode == 2
    assert "missing" in done.stderr


def test_version_and_json_with_verbose_after_the_command() -> None:
    done = mldr("--version")
    assert done.returncode == 0 and done.stdout.startswith("mldr ")
    fixture = REPO / "tests" / "fixtures" / "topology.json"
    done = mldr("topology", "validate", str(fixture), "-v", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True  # stdout is exactly one document


def test_a_usage_error_under_json_still_prints_one_document() -> None:
    done = mldr("history", "--limit", "many", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["type"] == "UsageError"
    assert "invalid int value: 'many'" in done.stderr
