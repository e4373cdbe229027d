"""The `mldr` command line as an operator meets it: help with examples and exit codes on every
command, `-v` before or after the command, `--version`, and `--json` giving exactly one JSON
document on stdout - for a result, a refused input or a usage error."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from mldr import cli, extras
from mldr.cli import build_parser, main

EXAMPLE_TOPOLOGY = Path(__file__).resolve().parents[1] / "fixtures" / "topology.json"


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path (`("sandbox", "fault", "heal")`), groups included."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def leaves() -> list[tuple[str, ...]]:
    parser = build_parser()
    return [p for p in commands(parser) if subparser(p).get_default("handler") is not None]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_is_covered() -> None:
    names = {" ".join(p) for p in leaves()}
    assert {"status", "failover", "failback", "history", "verify", "lag", "drill"} <= names
    assert {
        "topology validate",
        "topology import",
        "sandbox up",
        "sandbox down",
        "sandbox fault heal",
    } <= names


@pytest.mark.parametrize("path", list(commands(build_parser())), ids=lambda p: " ".join(p) or "mldr")
def test_every_help_shows_an_example_and_the_exit_codes(path: tuple[str, ...]) -> None:
    text = subparser(path).format_help()
    assert "Examples:" in text and "Exit codes:" in text
    examples = text.split("Examples:")[1].split("Exit codes:")[0]
    assert " ".join(("mldr", *path)) in examples, f"no example of `mldr {' '.join(path)}`"
    for code in ("0", "1", "2"):
        assert f"\n  {code}  " in text, f"exit code {code} not explained in `mldr {' '.join(path)} --help`"


@pytest.mark.parametrize("path", leaves(), ids=" ".join)
def test_every_command_takes_json_and_verbose_after_it(path: tuple[str, ...]) -> None:
    options = {o for a in subparser(path)._actions for o in a.option_strings}
    assert {"--json", "-v", "--verbose"} <= options


def test_verbose_before_or_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["-v", "status"]).verbose is True
    assert parser.parse_args(["status", "-v"]).verbose is True
    assert parser.parse_args(["sandbox", "fault", "heal", "--region", "r", "--verbose"]).verbose is True
    assert parser.parse_args(["status"]).verbose is False


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"mldr {version('mldr')}\n"


def test_validate_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topology", "validate", str(EXAMPLE_TOPOLOGY), "--json")
    assert code == 0
    document = json.loads(out)  # the whole of stdout: one document, nothing before or after
    assert document["valid"] is True and document["name"] == "example"
    assert document["datasets"] == ["training-data", "features", "model-artifacts"]


def test_an_error_under_json_is_one_document_on_stdout_and_the_message_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1}')
    code, out, err = run(capsys, "-v", "topology", "validate", str(bad), "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert error["type"] == "TopologyError" and error["exit_code"] == 2
    assert "name: missing" in error["message"]
    assert "mldr: error:" in err and "name: missing" in err


def test_a_usage_error_under_json_is_one_document_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["failover", "--to", "us-west-2", "--mode", "sideways", "--reason", "x" * 12, "--json"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert error["type"] == "UsageError" and "invalid choice: 'sideways'" in error["message"]
    assert "usage: mldr failover" in err
    with pytest.raises(SystemExit):  # without --json: nothing on stdout, as before
        main(["failover", "--to", "us-west-2", "--mode", "sideways", "--reason", "x" * 12])
    assert capsys.readouterr().out == ""


def test_sandbox_status_json_when_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLDR_SANDBOX_DIR", str(tmp_path))
    code, out, _ = run(capsys, "sandbox", "status", "--json")
    assert code == 0
    assert json.loads(out) == {"running": False, "edge_url": None, "dns_answer": None, "regions": {}}
    code, out, _ = run(capsys, "sandbox", "down", "--json")
    assert code == 0 and json.loads(out) == {"stopped": []}


def test_a_command_without_its_extra_names_the_extra_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = extras.importlib.util.find_spec
    monkeypatch.setattr(
        extras.importlib.util, "find_spec", lambda name, *a: None if name == "moto" else real(name, *a)
    )
    monkeypatch.setenv("MLDR_SANDBOX_DIR", str(tmp_path))
    code, out, err = run(capsys, "sandbox", "up", "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert error["type"] == "MissingExtra"
    assert "`mldr sandbox` needs the sandbox extra (missing: moto): pip install 'mldr[sandbox]'" in err
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


@pytest.fixture
def mldr_logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("mldr")
    saved: dict[str, Any] = {"handlers": list(log.handlers), "level": log.level, "propagate": log.propagate}
    yield log
    log.handlers[:] = saved["handlers"]
    log.setLevel(saved["level"])
    log.propagate = saved["propagate"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_reaches_a_terminal_without_v(
    terminal: bool, mldr_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(cli.sys, "stderr", stderr)
    cli.configure_logging(verbose=False)
    logging.getLogger("mldr.actions.resync").info("resync features: 40 of 100 (20 objects/s, ETA 3s)")
    logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
    shown = stderr.getvalue()
    if terminal:
        assert shown == "resync features: 40 of 100 (20 objects/s, ETA 3s)\n"  # mldr's progress only
    else:
        assert shown == ""  # a pipe or a log file gets warnings only, unless -v


@pytest.mark.parametrize(
    ("argv", "flag", "problem"),
    [
        (["verify", "--threshold", "nan"], "--threshold", "must be a finite number, got nan"),
        (["lag", "--threshold", "nan"], "--threshold", "must be a finite number, got nan"),
        (["lag", "--canary-timeout", "inf"], "--canary-timeout", "must be a finite number, got inf"),
        (["lag", "--canary-timeout", "86400"], "--canary-timeout", "must be > 0 and <= 3600, got 86400.0"),
        (["drill", "--rto-objective", "nan"], "--rto-objective", "must be a finite number, got nan"),
        (["drill", "--rpo-objective", "-1"], "--rpo-objective", "must be > 0, got -1.0"),
        (["history", "--limit", "-3"], "--limit", "must be >= 1 and <= 1000, got -3"),
        (["sandbox", "up", "--edge-port", "70000"], "--edge-port", "must be >= 1 and <= 65535, got 70000"),
        (
            ["sandbox", "up", "--failure-threshold", "0"],
            "--failure-threshold",
            "must be >= 1 and <= 10, got 0",
        ),
        (["sandbox", "up", "--lag", "nan"], "--lag", "must be a finite number, got nan"),
    ],
)
def test_absurd_numbers_are_usage_errors_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str, problem: str
) -> None:
    """NaN compares false with every bound and inf never ends: both used to be accepted (a drill
    "passed" against `RTO <= nan s`, `lag --canary-timeout inf` hung). Exit 2, nothing ran."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--json"])
    assert exit_info.value.code == 2
    message = json.loads(capsys.readouterr().out)["error"]["message"]
    assert flag in message and problem in message, message
