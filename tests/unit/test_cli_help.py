"""A new user reads the CLI, not the source (issue 16 item 6): every flag and argument of every
`mldr` command says what it is for; `mldr sandbox status` prints sentences, not dicts."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from mldr.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, path: str = "mldr"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_flag_of_every_command_has_help_text() -> None:
    missing = [
        f"{path} {'/'.join(action.option_strings) or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and action.help != argparse.SUPPRESS
        and not (action.help or "").strip()
    ]
    assert len(list(_parsers(build_parser()))) > 10, "the walk reaches the subcommands"
    assert missing == [], f"flags without help text: {missing}"


def test_sandbox_status_says_how_replication_is_in_words() -> None:
    from mldr.cli import replication_line

    rep = {
        "settings": {"paused": True, "lag_seconds": 5.0, "fail_globs": ["features/*"]},
        "counts": {"completed": 12, "pending": 2},
    }
    line = replication_line(rep)
    assert line == "PAUSED, lag 5 s; failing keys features/*; versions 12 completed, 2 pending"
    assert "{" not in line
    quiet = {"settings": {"paused": False, "lag_seconds": 1.0, "fail_globs": []}, "counts": {}}
    assert replication_line(quiet) == "running, lag 1 s; no keys set to fail"
    assert replication_line({}) == "replicator not answering"
