"""Listening sockets made by the sandbox manager and handed to its child servers.

The manager binds every server's socket itself (port 0: the kernel picks a free port) and passes
it to the child, which serves on it. Picking a free port, closing it and letting the child bind
it later raced: outgoing connections draw their local ports from the same ephemeral range, and
the sandbox's servers close every connection, so a port could be taken in between and a start
failed with "address in use". A socket bound from the first moment cannot be taken.

Each server also takes `--port` instead of `--fd`, for running it by hand.
"""

from __future__ import annotations

import argparse
import socket

from mldr.errors import SandboxError

HOST = "127.0.0.1"  # the sandbox never listens beyond this machine


def listen_socket(port: int = 0) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (0: any free port), inheritable by a child."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Lets a fixed port (the edge's) be bound again right after a sandbox stops (TIME_WAIT);
    # on Linux it never lets two sockets listen on one port.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise SandboxError(
            f"port {port} on {HOST} is in use ({exc.strerror}): stop what listens there or pick another"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="serve on this inherited listening socket (the manager's)")
    where.add_argument("--port", type=int, help="bind 127.0.0.1 on this port (running it by hand)")


def server_socket(args: argparse.Namespace) -> socket.socket:
    """The socket to serve on: the inherited one (`--fd`), else one bound on `--port`."""
    if args.fd is not None:
        return socket.socket(fileno=args.fd)
    return listen_socket(args.port)
