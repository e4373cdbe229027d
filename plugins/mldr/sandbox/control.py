"""The sandbox's control endpoint: region outages and heals asked for over HTTP, not by signal.

A region outage stops the region's processes (SIGSTOP). Only a process in the sandbox's own PID
namespace can do that: in docker-compose the Airflow services run in other containers, where the
sandbox's pids are not its processes (a signal there finds nothing, or a stranger). So
`python -m mldr.sandbox.serve` (the sandbox service's main process) serves this endpoint on
127.0.0.1, which the Airflow services share (network_mode: service:sandbox), and writes where it
is to `control.json` in the sandbox directory (the volume they mount). `Sandbox.region_outage`
and `heal` go through it whenever that file exists; a laptop's `mldr sandbox up` has none and
signals directly, as before.

Every request carries the token from `control.json`: a page in a browser on the host cannot
guess it, so it cannot stop a region by a cross-site POST.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from mldr.errors import MldrError, SandboxError, SandboxInputError
from mldr.sandbox.listen import HOST

CONTROL_FILE = "control.json"
TOKEN_HEADER = "X-Mldr-Control-Token"
#: The faults this endpoint applies: POST /faults/<name> {"region": ...}.
FAULTS = ("region-outage", "heal")

#: fault name -> what it does to a region (the sandbox's own, local implementation).
FaultHandler = Callable[[str], None]
#: GET /status: what only the owner of the processes can see ({"running": bool, "outage": {region: bool}}).
StatusHandler = Callable[[], dict[str, Any]]


class ControlServer:
    """Serves the faults in this process (the one that owns the sandbox's processes)."""

    def __init__(
        self, directory: Path, handlers: dict[str, FaultHandler], status: StatusHandler | None = None
    ) -> None:
        self.directory = directory
        self.handlers = handlers
        self.status = status
        self.token = secrets.token_urlsafe(24)
        self._server = ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-control", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()
        path = self.directory / CONTROL_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": self.url, "token": self.token, "pid": os.getpid()}))
        tmp.chmod(0o640)  # the Airflow services read it (group 0, as in the official compose)
        tmp.replace(path)

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / CONTROL_FILE).unlink()
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # the sandbox's log records what a fault did, not every request

            def _reply(self, status: HTTPStatus, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                if secrets.compare_digest(self.headers.get(TOKEN_HEADER, ""), server.token):
                    return True
                self._reply(HTTPStatus.FORBIDDEN, {"error": f"missing or wrong {TOKEN_HEADER}"})
                return False

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path != "/status" or server.status is None:
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path!r} here: GET /status"})
                    return
                self._reply(HTTPStatus.OK, server.status())

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                fault = self.path.removeprefix("/faults/")
                handler = server.handlers.get(fault) if self.path.startswith("/faults/") else None
                if handler is None:
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"unknown fault {self.path!r}: {FAULTS}"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    region = json.loads(self.rfile.read(length) or b"{}").get("region")
                    if not isinstance(region, str) or not region:
                        raise SandboxInputError('the request must be {"region": "<region>"}')
                    handler(region)
                except (MldrError, ValueError, AttributeError) as exc:
                    status = HTTPStatus.BAD_REQUEST if _is_input_error(exc) else HTTPStatus.CONFLICT
                    self._reply(status, {"error": str(exc)})
                    return
                self._reply(HTTPStatus.OK, {"fault": fault, "region": region})

        return Handler


def _is_input_error(exc: Exception) -> bool:
    return not isinstance(exc, MldrError) or getattr(exc, "exit_code", 1) == 2


@dataclass(frozen=True)
class ControlClient:
    """Asks the sandbox's main process to apply a fault (from any container sharing its network)."""

    url: str
    token: str

    @classmethod
    def find(cls, directory: Path) -> ControlClient | None:
        """The endpoint of the sandbox in `directory`, None when it serves none (`mldr sandbox up`)."""
        try:
            document = json.loads((directory / CONTROL_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SandboxError(f"cannot read {directory / CONTROL_FILE}: {exc}") from exc
        return cls(url=str(document["url"]), token=str(document["token"]))

    def status(self) -> dict[str, Any] | None:
        """What the sandbox's own process sees (running, outages); None when it does not answer."""
        try:
            response = httpx.get(f"{self.url}/status", headers={TOKEN_HEADER: self.token}, timeout=5.0)
        except httpx.HTTPError:
            return None
        if response.status_code != HTTPStatus.OK:
            return None
        document: dict[str, Any] = response.json()
        return document

    def fault(self, fault: str, region: str) -> None:
        try:
            response = httpx.post(
                f"{self.url}/faults/{fault}",
                json={"region": region},
                headers={TOKEN_HEADER: self.token},
                timeout=10.0,
            )
        except httpx.HTTPError as exc:
            raise SandboxError(
                f"the sandbox's control endpoint {self.url} does not answer ({exc}): is the sandbox "
                "service running? (`docker compose ps sandbox`)"
            ) from exc
        if response.status_code == HTTPStatus.OK:
            return
        try:
            message = str(response.json().get("error"))
        except ValueError:
            message = response.text
        if response.status_code == HTTPStatus.BAD_REQUEST:
            raise SandboxInputError(message)
        raise SandboxError(f"the sandbox refused {fault} for {region}: {message}")
