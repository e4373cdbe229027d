"""What every `mldr` command shares: the parser, its help, `-v`, `--json`, the exit codes.

One JSON document on stdout when `--json` is given, whatever happens (a result, a refused
input, an error): scripts parse stdout, operators read stderr, where prompts and progress go.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

from mldr.inputs import number_problem

#: The exit codes of every command; a command's help lists them with its own words for 0 and 1.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

DEFAULT_EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "the operation failed or could not run (unreachable region, AWS error)",
    EXIT_BAD_INPUT: "bad input (flags, topology, unknown region or dataset): nothing was changed",
}


def mldr_version() -> str:
    try:
        return version("mldr")
    except PackageNotFoundError:  # run from a checkout without installing it (PYTHONPATH=plugins)
        return "0+unknown"


def print_json(data: Any) -> None:
    """The one JSON document a `--json` run prints on stdout."""
    print(json.dumps(data, indent=2, default=str))


def error_document(message: str, *, kind: str, exit_code: int) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "exit_code": exit_code}}


def wants_json(argv: Sequence[str]) -> bool:
    """`--json` on the command line, read before (or without) a successful parse."""
    return "--json" in argv[: list(argv).index("--") if "--" in argv else len(argv)]


class UsageError(SystemExit):
    """Bad flags: argparse's exit (code 2, usage on stderr), with the message kept for `--json`."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_BAD_INPUT)
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors keep their message (subparsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse argv; a usage error under `--json` also prints its JSON document, then exits 2."""
    try:
        return parser.parse_args(argv)
    except UsageError as exc:
        if wants_json(sys.argv[1:] if argv is None else argv):
            print_json(error_document(exc.message, kind="UsageError", exit_code=EXIT_BAD_INPUT))
        raise


def _verbose_parent() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand that was not given -v keeps what the top level parsed (`mldr -v status`)
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what happens underneath"
    )
    return parent


VERBOSE = _verbose_parent()


def epilog(examples: Sequence[str], exit_codes: dict[int, str] | None = None) -> str:
    codes = {**DEFAULT_EXIT_CODES, **(exit_codes or {})}
    lines = ["Examples:", *(f"  {example}" for example in examples), "", "Exit codes:"]
    lines += [f"  {code}  {meaning}" for code, meaning in sorted(codes.items())]
    return "\n".join(lines)


def add_command(
    sub: Any,
    name: str,
    *,
    help: str,
    examples: Sequence[str],
    exit_codes: dict[int, str] | None = None,
    description: str | None = None,
    json_help: str = "print the result as one JSON document on stdout",
) -> argparse.ArgumentParser:
    """A command (a leaf): its help ends with examples and exit codes; it takes -v and --json."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog(examples, exit_codes),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[VERBOSE],
    )
    parser.add_argument("--json", action="store_true", help=json_help)
    return parser


def add_group(
    sub: Any, name: str, *, help: str, examples: Sequence[str], dest: str = "action"
) -> argparse._SubParsersAction[Any]:
    """A command that only holds commands (`mldr sandbox ...`)."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=help,
        epilog=epilog(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[VERBOSE],
    )
    return parser.add_subparsers(dest=dest, required=True, metavar="COMMAND")


def say(message: str) -> None:
    """Progress and prompts: stderr, so stdout holds only the result."""
    print(message, file=sys.stderr, flush=True)


def number(
    *,
    unit: str = "seconds",
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> Callable[[str], float]:
    """An argparse `type` for a finite number within bounds: `nan`, `inf` and out-of-range values
    are usage errors (exit 2) naming the flag, never accepted and compared later."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid float value: {text!r} (a number of {unit})") from None
        problem = number_problem(value, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def whole(*, minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse `type` for a whole number within bounds."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        problem = number_problem(value, minimum=minimum, maximum=maximum)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse
