"""`mldr`: the command line. The break-glass path when Airflow itself is down.

Every command runs the same library code as the DAGs. Errors are one clear message and a
non-zero exit code, never a traceback: 2 for bad input (nothing was changed), 1 for a check
or an operation that failed. `--json` on any command prints exactly one JSON document on
stdout (the result, or the error); prompts, progress and logs go to stderr.

This module holds `topology` and `sandbox` and the entry point; the break-glass commands are in
`cli_ops` (status, failover, failback, history) and `cli_checks` (verify, lag), `drill` in
`cli_drill`. None of them imports Airflow, Pulumi, moto or scikit-learn at the top: `pip install
mldr` without extras runs them, and a command that needs an extra says which.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mldr.cli_base import (
    EXIT_OK,
    Parser,
    add_command,
    add_group,
    epilog,
    error_document,
    mldr_version,
    number,
    parse,
    print_json,
    say,
    whole,
)
from mldr.errors import MldrError
from mldr.extras import require_extra
from mldr.sandbox.settings import FAILURE_THRESHOLD_RANGE, PORT_RANGE

Handler = Callable[[argparse.Namespace], int]


def load_sandbox_env() -> None:
    """Use the running sandbox's connections when the environment names no topology.

    Lets `mldr status` etc. work right after `mldr sandbox up` without sourcing
    `.sandbox/airflow.env`; an explicit `MLDR_TOPOLOGY` always wins.
    """
    if os.environ.get("MLDR_TOPOLOGY"):
        return
    from mldr.sandbox.location import ENV_FILE, read_env_file, sandbox_dir

    env_file = sandbox_dir() / ENV_FILE
    if not env_file.exists():
        return
    for name, value in read_env_file(env_file).items():
        os.environ.setdefault(name, value)


# --- topology --------------------------------------------------------------------------


def cmd_topology_schema(args: argparse.Namespace) -> int:
    from mldr.topology import json_schema

    print_json(json_schema())  # JSON either way: --json changes nothing
    return EXIT_OK


def cmd_topology_validate(args: argparse.Namespace) -> int:
    from mldr.topology import load_topology_file

    topology = load_topology_file(args.file)
    if args.json:
        print_json(
            {
                "file": args.file,
                "valid": True,
                "name": topology.name,
                "version": topology.version,
                "primary_region": topology.primary_region,
                "secondary_region": topology.secondary_region,
                "datasets": [d.name for d in topology.datasets],
            }
        )
        return EXIT_OK
    print(
        f"{args.file}: valid topology {topology.name!r} (version {topology.version}): "
        f"{topology.primary_region} -> {topology.secondary_region}, {len(topology.datasets)} datasets"
    )
    return EXIT_OK


def cmd_topology_import(args: argparse.Namespace) -> int:
    from mldr.topology_import import import_to_airflow, topology_from_pulumi_json

    topology = topology_from_pulumi_json(args.from_pulumi_json)
    if args.print:
        print(topology.to_json())  # the document itself, JSON either way
        return EXIT_OK
    require_extra("airflow", needed_by="`mldr topology import` (without --print)")
    done = import_to_airflow(topology)
    if args.json:
        print_json({"imported": True, "name": topology.name, "message": done})
    else:
        print(done)
    return EXIT_OK


# --- sandbox ---------------------------------------------------------------------------


def _sandbox() -> Any:
    require_extra("sandbox", needed_by="`mldr sandbox`")
    from mldr.sandbox.manager import Sandbox

    return Sandbox()


def _progress(message: str) -> None:
    say(f"  {message}")


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    state, started = _sandbox().up(
        lag_seconds=args.lag,
        probe_interval=args.probe_interval,
        failure_threshold=args.failure_threshold,
        edge_port=args.edge_port,
        standby_capacity=args.standby_capacity,
        scale_up_seconds=args.scale_up_seconds,
        progress=_progress,
    )
    if args.json:
        print_json(
            {
                "started": started,
                "edge_url": state.edge_url,
                "primary": state.primary,
                "secondary": state.secondary,
                "topology": state.topology_path,
                "env": state.env_path,
            }
        )
        return EXIT_OK
    if not started:
        print(f"sandbox already running (edge {state.edge_url}); nothing to do")
        return EXIT_OK
    print(f"sandbox up: edge {state.edge_url}, regions {state.primary} (primary) and {state.secondary}")
    print(f"  topology:    {state.topology_path}")
    print(f"  connections: source {state.env_path}")
    return EXIT_OK


def cmd_sandbox_down(args: argparse.Namespace) -> int:
    stopped = _sandbox().down()
    if args.json:
        print_json({"stopped": stopped})
    else:
        print(f"sandbox down: stopped {len(stopped)} process(es)" if stopped else "sandbox was not running")
    return EXIT_OK


def cmd_sandbox_status(args: argparse.Namespace) -> int:
    status = _sandbox().status()
    if args.json:
        print_json(status)
        return EXIT_OK
    if not status["running"] and not status["regions"]:
        print("sandbox is not running (start it with `mldr sandbox up`)")
        return EXIT_OK
    print(f"sandbox {'running' if status['running'] else 'NOT fully running'}; edge {status['edge_url']}")
    print(f"  DNS answer: {status['dns_answer']}")
    for region, info in status["regions"].items():
        state = "OUTAGE (stopped)" if info["outage"] else ("healthy" if info["healthy"] else "unhealthy")
        print(f"  {region}: {state}; s3 {info['s3_endpoint']}; inference {info['inference_url']}")
    print(f"  replication: {replication_line(status.get('replication') or {})}")
    return EXIT_OK


def replication_line(rep: dict[str, Any]) -> str:
    """The replicator's settings and counts as a sentence, not two Python dicts."""
    settings, counts = rep.get("settings"), rep.get("counts")
    if not isinstance(settings, dict):
        return "replicator not answering"
    state = "PAUSED" if settings.get("paused") else "running"
    parts = [f"{state}, lag {float(settings.get('lag_seconds') or 0):g} s"]
    globs = settings.get("fail_globs") or []
    parts.append(f"failing keys {', '.join(globs)}" if globs else "no keys set to fail")
    line = "; ".join(parts)
    if isinstance(counts, dict) and counts:
        line += "; versions " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return line


def cmd_sandbox_fault(args: argparse.Namespace) -> int:
    sandbox = _sandbox()
    if args.fault == "region-outage":
        sandbox.region_outage(args.region)
        document = {"fault": args.fault, "region": args.region, "state": "stopped"}
        message = (
            f"{args.region}: S3 and inference stopped (SIGSTOP); "
            f"heal with `mldr sandbox fault heal --region {args.region}`"
        )
    elif args.fault == "heal":
        sandbox.heal(args.region)
        document = {"fault": args.fault, "region": args.region, "state": "resumed"}
        message = f"{args.region}: resumed"
    else:
        result = sandbox.replication(args.action, args.value)
        document = {"fault": args.fault, "action": args.action, "result": result}
        message = f"replication {args.action}: {json.dumps(result)}"
    if args.json:
        print_json(document)
    else:
        print(message)
    return EXIT_OK


# --- parser ----------------------------------------------------------------------------

SANDBOX_EXIT_CODES = {1: "the sandbox could not do it (a process did not start, not running)"}


def _register_topology(sub: Any) -> None:
    topo = add_group(
        sub,
        "topology",
        help="the topology document",
        examples=["mldr topology validate topology.json", "mldr topology schema > topology.schema.json"],
    )
    add_command(
        topo,
        "schema",
        help="print the JSON Schema",
        examples=["mldr topology schema > topology.schema.json"],
        json_help="accepted for symmetry: the schema is JSON either way",
    ).set_defaults(handler=cmd_topology_schema)
    validate = add_command(
        topo,
        "validate",
        help="check a topology file",
        examples=[
            "mldr topology validate .sandbox/topology.json",
            "mldr topology validate stack.json --json",
        ],
        exit_codes={0: "the document is valid", 2: "it is not: every problem is listed by field path"},
    )
    validate.add_argument("file", help="the topology document (JSON) to check")
    validate.set_defaults(handler=cmd_topology_validate)
    imp = add_command(
        topo,
        "import",
        help="load Pulumi's exported topology into the Airflow Variable (needs the airflow extra)",
        examples=[
            "pulumi stack output --json > stack.json && mldr topology import --from-pulumi-json stack.json",
            "mldr topology import --from-pulumi-json stack.json --print",
        ],
        exit_codes={1: "the Airflow Variable could not be written"},
    )
    imp.add_argument(
        "--from-pulumi-json", required=True, metavar="FILE", help="`pulumi stack output --json` output"
    )
    imp.add_argument("--print", action="store_true", help="validate and print it instead of importing")
    imp.set_defaults(handler=cmd_topology_import)


def _register_sandbox(sub: Any) -> None:
    sandbox = add_group(
        sub,
        "sandbox",
        help="the local two-region sandbox (needs the sandbox extra)",
        examples=["mldr sandbox up", "mldr sandbox status --json", "mldr sandbox down"],
    )
    up = add_command(
        sandbox,
        "up",
        help="start it (a no-op if running)",
        examples=["mldr sandbox up", "mldr sandbox up --lag 5 --edge-port 8443 --json"],
        exit_codes=SANDBOX_EXIT_CODES,
    )
    up.add_argument(
        "--lag", type=number(minimum=0), default=1.0, help="replication lag in seconds (default 1)"
    )
    up.add_argument(
        "--probe-interval",
        type=number(minimum=0, exclusive_minimum=True),
        default=1.0,
        help="health-check interval (default 1 s)",
    )
    up.add_argument(
        "--failure-threshold",
        type=whole(minimum=FAILURE_THRESHOLD_RANGE[0], maximum=FAILURE_THRESHOLD_RANGE[1]),
        default=3,
        help="failed probes to unhealthy (default 3)",
    )
    up.add_argument(
        "--edge-port",
        type=whole(minimum=PORT_RANGE[0], maximum=PORT_RANGE[1]),
        default=None,
        help="fixed port for the edge (default: a free one)",
    )
    up.add_argument(
        "--standby-capacity",
        type=whole(minimum=0, maximum=2),
        default=1,
        help="tasks in the standby region (default 1, a warm standby; 0 = pilot light: it answers "
        "nothing until a failover scales it up)",
    )
    up.add_argument(
        "--scale-up-seconds",
        type=number(minimum=0),
        default=10.0,
        help="how long new tasks take to serve after a scale-up from 0 tasks (default 10)",
    )
    up.set_defaults(handler=cmd_sandbox_up)
    add_command(
        sandbox,
        "down",
        help="stop every sandbox process",
        examples=["mldr sandbox down", "MLDR_SANDBOX_DIR=/tmp/box mldr sandbox down --json"],
        exit_codes=SANDBOX_EXIT_CODES,
    ).set_defaults(handler=cmd_sandbox_down)
    add_command(
        sandbox,
        "status",
        help="what runs, what answers",
        examples=["mldr sandbox status", "mldr sandbox status --json"],
        exit_codes=SANDBOX_EXIT_CODES,
    ).set_defaults(handler=cmd_sandbox_status)
    fault = add_group(
        sandbox,
        "fault",
        help="inject or heal a fault",
        examples=[
            "mldr sandbox fault region-outage --region us-east-1",
            "mldr sandbox fault replication lag 5",
        ],
        dest="fault",
    )
    outage = add_command(
        fault,
        "region-outage",
        help="stop a region's S3 and inference (SIGSTOP)",
        examples=["mldr sandbox fault region-outage --region us-east-1"],
        exit_codes=SANDBOX_EXIT_CODES,
    )
    outage.add_argument("--region", required=True, help="the sandbox region to stop")
    outage.set_defaults(handler=cmd_sandbox_fault)
    heal = add_command(
        fault,
        "heal",
        help="resume a stopped region",
        examples=["mldr sandbox fault heal --region us-east-1"],
        exit_codes=SANDBOX_EXIT_CODES,
    )
    heal.add_argument("--region", required=True, help="the stopped sandbox region to resume")
    heal.set_defaults(handler=cmd_sandbox_fault)
    repl = add_command(
        fault,
        "replication",
        help="pause | resume | lag SECONDS | fail-keys GLOB | clear",
        examples=[
            "mldr sandbox fault replication pause",
            "mldr sandbox fault replication lag 5",
            "mldr sandbox fault replication fail-keys 'features/*' --json",
        ],
        exit_codes=SANDBOX_EXIT_CODES,
    )
    repl.add_argument(
        "action",
        choices=["pause", "resume", "lag", "fail-keys", "control-split", "control-join", "clear"],
        help="what to do to the sandbox's replication",
    )
    repl.add_argument(
        "value", nargs="?", default=None, help="lag: seconds of delay; fail-keys: a key glob (features/*)"
    )
    repl.set_defaults(handler=cmd_sandbox_fault)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mldr",
        description="Disaster recovery for ML pipelines on AWS.",
        epilog=epilog(
            [
                "mldr status",
                "mldr failover --to us-west-2 --mode planned --reason 'maintenance in use1' --dry-run",
                "mldr -v verify --json",
            ]
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mldr {mldr_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log what happens underneath (also after the command)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_topology(sub)
    _register_sandbox(sub)
    for register in _extra_commands_list():
        register(sub)
    return parser


def _extra_commands_list() -> list[Callable[[Any], None]]:
    from mldr import cli_autopilot, cli_checks, cli_drill, cli_ops, cli_restore

    return [
        cli_ops.register,
        cli_restore.register,
        cli_checks.register,
        cli_drill.register,
        cli_autopilot.register,
    ]


class _ProgressFormatter(logging.Formatter):
    """Progress lines as they are; a warning or an error says which it is."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


def configure_logging(verbose: bool) -> None:
    """-v: every logger at INFO with timestamps. Without it, warnings only; but an operator at a
    terminal still sees mldr's own progress (steps, n of N, rate, ETA) on stderr."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    mldr_log = logging.getLogger("mldr")
    if (
        verbose
        or not sys.stderr.isatty()
        or any(getattr(h, "mldr_progress", False) for h in mldr_log.handlers)
    ):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ProgressFormatter("%(message)s"))
    handler.mldr_progress = True  # type: ignore[attr-defined]
    mldr_log.addHandler(handler)
    mldr_log.setLevel(logging.INFO)
    mldr_log.propagate = False  # printed once, by the handler above


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    configure_logging(getattr(args, "verbose", False))
    if args.command != "sandbox":
        load_sandbox_env()
    handler: Handler = args.handler
    as_json = getattr(args, "json", False)
    try:
        return handler(args)
    except MldrError as exc:
        print(f"mldr: error: {exc}", file=sys.stderr)
        if as_json:
            print_json(error_document(str(exc), kind=type(exc).__name__, exit_code=exc.exit_code))
        return exc.exit_code
    except KeyboardInterrupt:
        print("mldr: interrupted", file=sys.stderr)
        if as_json:
            print_json(error_document("interrupted", kind="KeyboardInterrupt", exit_code=130))
        return 130


def run() -> NoReturn:
    """The `mldr` command: `main()`, then end the process without tearing its heap down.

    A command loads botocore's service models, hundreds of thousands of small objects; the
    interpreter's orderly shutdown frees them one by one, a quarter of a second (measured on
    `mldr verify`) after the work is done and the output written. So once the exit handlers
    have run (log handlers flushed, temporary files removed) and nothing else is running, the
    process ends at once. With another thread still at work, the orderly shutdown waits for it.
    """
    code = main()
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
