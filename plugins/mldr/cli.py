"""`mldr`: the command line. The break-glass path when Airflow itself is down.

Every command runs the same library code as the DAGs. Errors are one clear message and a
non-zero exit code, never a traceback: 2 for bad input (nothing was changed), 1 for a check
or an operation that failed.
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

from mldr.errors import MldrError

Handler = Callable[[argparse.Namespace], int]


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def load_sandbox_env() -> None:
    """Use the running sandbox's connections when the environment names no topology.

    Lets `mldr status` etc. work right after `mldr sandbox up` without sourcing
    `.sandbox/airflow.env`; an explicit `MLDR_TOPOLOGY` always wins.
    """
    if os.environ.get("MLDR_TOPOLOGY"):
        return
    from mldr.sandbox.manager import sandbox_dir

    env_file = sandbox_dir() / "airflow.env"
    if not env_file.exists():
        return
    for line in env_file.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            os.environ.setdefault(key, value.strip("'"))


# --- topology --------------------------------------------------------------------------


def cmd_topology_schema(args: argparse.Namespace) -> int:
    from mldr.topology import json_schema

    _print_json(json_schema())
    return 0


def cmd_topology_validate(args: argparse.Namespace) -> int:
    from mldr.topology import load_topology_file

    topology = load_topology_file(args.file)
    print(
        f"{args.file}: valid topology {topology.name!r} (version {topology.version}): "
        f"{topology.primary_region} -> {topology.secondary_region}, {len(topology.datasets)} datasets"
    )
    return 0


def cmd_topology_import(args: argparse.Namespace) -> int:
    from mldr.topology_import import import_to_airflow, topology_from_pulumi_json

    topology = topology_from_pulumi_json(args.from_pulumi_json)
    if args.print:
        print(topology.to_json())
        return 0
    print(import_to_airflow(topology))
    return 0


# --- sandbox ---------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    from mldr.sandbox.manager import Sandbox

    sandbox = Sandbox()
    state, started = sandbox.up(
        lag_seconds=args.lag,
        probe_interval=args.probe_interval,
        failure_threshold=args.failure_threshold,
        edge_port=args.edge_port,
        progress=_progress,
    )
    if not started:
        print(f"sandbox already running (edge {state.edge_url}); nothing to do")
        return 0
    print(f"sandbox up: edge {state.edge_url}, regions {state.primary} (primary) and {state.secondary}")
    print(f"  topology:    {state.topology_path}")
    print(f"  connections: source {state.env_path}")
    return 0


def cmd_sandbox_down(args: argparse.Namespace) -> int:
    from mldr.sandbox.manager import Sandbox

    stopped = Sandbox().down()
    print(f"sandbox down: stopped {len(stopped)} process(es)" if stopped else "sandbox was not running")
    return 0


def cmd_sandbox_status(args: argparse.Namespace) -> int:
    from mldr.sandbox.manager import Sandbox

    status = Sandbox().status()
    if args.json:
        _print_json(status)
        return 0
    if not status["running"] and not status["regions"]:
        print("sandbox is not running (start it with `mldr sandbox up`)")
        return 0
    print(f"sandbox {'running' if status['running'] else 'NOT fully running'}; edge {status['edge_url']}")
    print(f"  DNS answer: {status['dns_answer']}")
    for region, info in status["regions"].items():
        state = "OUTAGE (stopped)" if info["outage"] else ("healthy" if info["healthy"] else "unhealthy")
        print(f"  {region}: {state}; s3 {info['s3_endpoint']}; inference {info['inference_url']}")
    rep = status.get("replication") or {}
    print(f"  replication: {rep.get('settings')} {rep.get('counts')}")
    return 0


def cmd_sandbox_fault(args: argparse.Namespace) -> int:
    from mldr.sandbox.manager import Sandbox

    sandbox = Sandbox()
    if args.fault == "region-outage":
        sandbox.region_outage(args.region)
        print(
            f"{args.region}: S3 and inference stopped (SIGSTOP); "
            f"heal with `mldr sandbox fault heal --region {args.region}`"
        )
    elif args.fault == "heal":
        sandbox.heal(args.region)
        print(f"{args.region}: resumed")
    else:
        result = sandbox.replication(args.action, args.value)
        print(f"replication {args.action}: {json.dumps(result)}")
    return 0


# --- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mldr", description="Disaster recovery for ML pipelines on AWS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens underneath")
    sub = parser.add_subparsers(dest="command", required=True)

    topo = sub.add_parser("topology", help="the topology document").add_subparsers(
        dest="action", required=True
    )
    topo.add_parser("schema", help="print the JSON Schema").set_defaults(handler=cmd_topology_schema)
    validate = topo.add_parser("validate", help="check a topology file")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_topology_validate)
    imp = topo.add_parser("import", help="load Pulumi's exported topology into the Airflow Variable")
    imp.add_argument(
        "--from-pulumi-json", required=True, metavar="FILE", help="`pulumi stack output --json` output"
    )
    imp.add_argument("--print", action="store_true", help="validate and print it instead of importing")
    imp.set_defaults(handler=cmd_topology_import)

    sandbox = sub.add_parser("sandbox", help="the local two-region sandbox").add_subparsers(
        dest="action", required=True
    )
    up = sandbox.add_parser("up", help="start it (a no-op if running)")
    up.add_argument("--lag", type=float, default=1.0, help="replication lag in seconds (default 1)")
    up.add_argument("--probe-interval", type=float, default=1.0, help="health-check interval (default 1 s)")
    up.add_argument("--failure-threshold", type=int, default=3, help="failed probes to unhealthy (default 3)")
    up.add_argument(
        "--edge-port", type=int, default=None, help="fixed port for the edge (default: a free one)"
    )
    up.set_defaults(handler=cmd_sandbox_up)
    sandbox.add_parser("down", help="stop every sandbox process").set_defaults(handler=cmd_sandbox_down)
    status = sandbox.add_parser("status", help="what runs, what answers")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_sandbox_status)
    fault = sandbox.add_parser("fault", help="inject or heal a fault").add_subparsers(
        dest="fault", required=True
    )
    outage = fault.add_parser("region-outage", help="stop a region's S3 and inference (SIGSTOP)")
    outage.add_argument("--region", required=True)
    outage.set_defaults(handler=cmd_sandbox_fault)
    heal = fault.add_parser("heal", help="resume a stopped region")
    heal.add_argument("--region", required=True)
    heal.set_defaults(handler=cmd_sandbox_fault)
    repl = fault.add_parser("replication", help="pause | resume | lag SECONDS | fail-keys GLOB | clear")
    repl.add_argument("action", choices=["pause", "resume", "lag", "fail-keys", "clear"])
    repl.add_argument("value", nargs="?", default=None)
    repl.set_defaults(handler=cmd_sandbox_fault)

    for register in _extra_commands_list():
        register(sub)
    return parser


def _extra_commands_list() -> list[Callable[[Any], None]]:
    from mldr import cli_checks, cli_drill, cli_ops

    return [cli_ops.register, cli_checks.register, cli_drill.register]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command != "sandbox":
        load_sandbox_env()
    handler: Handler = args.handler
    try:
        return handler(args)
    except MldrError as exc:
        print(f"mldr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mldr: interrupted", file=sys.stderr)
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
