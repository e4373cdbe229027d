"""The DR dashboard's FastAPI app, mounted by the Airflow API server at `/mldr` (see the plugin).

Read-only: GET routes only, and nothing they call writes anything. Every route but the nav icon
requires an authenticated Airflow user, through the API server's own `get_user` dependency (the
`_token` JWT cookie the Airflow UI sets at login, or an `Authorization: Bearer` token), whom the
auth manager lets read the DR DAGs (`access.py`); anyone else gets 403. A browser without a
session is sent to the Airflow login page and back.

The topology and the cloud handle are built on the first request, not at import: the API server
imports plugins at start-up, which must not need the topology or any AWS endpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mldr.airflow.dashboard.access import DashboardForbidden, dr_reader
from mldr.airflow.dashboard.data import DashboardSource
from mldr.airflow.dashboard.render import ICON_SVG, error_page, render
from mldr.errors import ConfigurationError, MldrError
from mldr.reports import DASHBOARD_PATH

log = logging.getLogger(__name__)

URL_PREFIX = DASHBOARD_PATH  # the links CLIs and task logs print (`mldr.reports.report_url`) lead here


def _airflow_user_dependency() -> Callable[..., Any]:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


get_user = _airflow_user_dependency()
#: A signed-in user who may read the DR DAGs (403 otherwise).
User = Annotated[Any, Depends(dr_reader)]

#: Stored reports are our own HTML; still, they render data (keys, messages) from buckets, so the
#: browser may not run scripts or load anything from them.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def default_source() -> DashboardSource:
    """The running deployment's topology (MLDR_TOPOLOGY or the Airflow Variable) and connections."""
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.cloud.calls import PROBE_TIMEOUTS
    from mldr.topology import TOPOLOGY_VARIABLE, load_topology, parse_topology

    try:
        topology = load_topology()
    except ConfigurationError:
        # The Task SDK's Variable.get is for tasks; in the API server read the Variable directly.
        from airflow.models import Variable

        value = Variable.get(TOPOLOGY_VARIABLE, default_var=None)
        if not value:
            raise
        topology = parse_topology(value, source=f"Airflow Variable {TOPOLOGY_VARIABLE}")
    return DashboardSource(topology, AwsCloud.from_airflow(topology, timeouts=PROBE_TIMEOUTS))


def create_app(source: Callable[[], DashboardSource] = default_source) -> FastAPI:
    app = FastAPI(
        title="mldr DR dashboard",
        description="Read-only disaster-recovery status of the ML platform",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    lock = threading.Lock()
    built: list[DashboardSource] = []

    def dashboard_source() -> DashboardSource:
        with lock:
            if not built:
                built.append(source())  # a failure is retried on the next request
            return built[0]

    @app.exception_handler(HTTPException)
    async def login_first(request: Request, exc: HTTPException) -> Response:
        """A person opening the page without a session goes to the login page and comes back."""
        wants_html = "text/html" in request.headers.get("accept", "")
        if isinstance(exc, DashboardForbidden) and wants_html:
            # signed in, but not allowed: logging in again would not help
            return HTMLResponse(error_page("Not allowed", str(exc.detail)), status_code=403)
        if exc.status_code in (401, 403) and wants_html and request.method == "GET":
            from airflow.api_fastapi.app import get_auth_manager

            login = get_auth_manager().get_url_login(next_url=str(request.url))
            return RedirectResponse(login, status_code=303)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse)
    def dashboard(user: User) -> HTMLResponse:
        try:
            page = render(dashboard_source().read())
        except MldrError as exc:
            log.warning("DR dashboard unavailable: %s", exc)
            return HTMLResponse(error_page("DR dashboard unavailable", str(exc)), status_code=503)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/api/status")
    def status(user: User) -> JSONResponse:
        try:
            data = dataclasses.asdict(dashboard_source().read())
        except MldrError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        return JSONResponse(jsonable_encoder(data), headers={"Cache-Control": "no-store"})

    @app.get("/reports/{kind}/{name}", response_class=HTMLResponse)
    def report(kind: str, name: str, user: User) -> HTMLResponse:
        try:
            region, page = dashboard_source().report_html(kind, name)
        except ConfigurationError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        except MldrError as exc:
            raise HTTPException(status_code=404, detail=f"report {quote(kind)}/{quote(name)}: {exc}") from exc
        return HTMLResponse(
            page,
            headers={"Content-Security-Policy": REPORT_CSP, "X-Mldr-Report-Region": region},
        )

    @app.get("/icon.svg")
    def icon() -> Response:
        # the nav bar's icon: no data in it, so it needs no session
        return Response(ICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    return app
