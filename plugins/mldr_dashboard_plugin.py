"""Airflow plugin: the DR dashboard, in the Airflow UI's top navigation.

Airflow's plugin loader imports the `.py` files under `plugins/` (`.airflowignore` keeps it out of
the `mldr` library, whose modules are imported as the `mldr` package instead). This one registers:

- `fastapi_apps`: the dashboard app, mounted by the API server at `/mldr` (read-only, requires an
  authenticated Airflow user);
- `external_views`: a top-level navigation entry that shows `/mldr/` inside the UI (an iframe at
  `/plugin/dr-dashboard`); the href is relative, so a non-root Airflow base URL works too.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mldr.airflow.dashboard.app import URL_PREFIX, create_app


class MldrDashboardPlugin(AirflowPlugin):
    name = "mldr_dashboard"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "mldr DR dashboard"},
    ]
    external_views = [
        {
            "name": "DR dashboard",
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "dr-dashboard",
            "destination": "nav",
            "nav_top_level": True,
            "icon": URL_PREFIX.lstrip("/") + "/icon.svg",
        }
    ]
