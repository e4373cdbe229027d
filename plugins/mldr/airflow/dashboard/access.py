"""Who may read the DR dashboard: whoever Airflow's auth manager lets read the DR DAGs.

The dashboard shows what those DAGs did and hold (operations, the lease, lag, drills, reports),
so it asks the same question the Airflow UI asks before showing a DAG's runs: may this user GET
each of them? The configured auth manager answers (FAB roles and per-DAG permissions, the simple
auth manager's roles and teams, Keycloak, ...); mldr keeps no access list of its own. A user who
may read only some of them is refused the whole page: it mixes their data on every view.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException

from mldr.airflow.dashboard.data import OPERATION_DAGS, REPORT_DAGS

#: The DAGs whose data the dashboard shows.
DASHBOARD_DAGS: tuple[str, ...] = tuple(sorted({*OPERATION_DAGS.values(), *REPORT_DAGS.values()}))


class DashboardForbidden(HTTPException):
    """A signed-in user the auth manager does not let read the DR DAGs (403, not a login redirect)."""


def _airflow_user_dependency() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


get_user = _airflow_user_dependency()


def _team_names(dag_ids: tuple[str, ...]) -> dict[str, str | None]:
    """Each DAG's team, where Airflow runs multi-team (a metadata DB read); else no teams."""
    from airflow.configuration import conf

    if not conf.getboolean("core", "multi_team", fallback=False):
        return dict.fromkeys(dag_ids)
    from airflow.models.dag import DagModel

    return dict(DagModel.get_dag_id_to_team_name_mapping(list(dag_ids)))


def refused_dags(user: Any) -> list[str]:
    """The dashboard's DAGs the auth manager does not let `user` read (empty: may read all)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    manager = get_auth_manager()
    teams = _team_names(DASHBOARD_DAGS)
    return [
        dag_id
        for dag_id in DASHBOARD_DAGS
        if not manager.is_authorized_dag(
            method="GET", user=user, details=DagDetails(id=dag_id, team_name=teams.get(dag_id))
        )
    ]


def dr_reader(user: Annotated[Any, Depends(get_user)]) -> Any:
    """The signed-in user, if they may read every DAG the dashboard shows; else 403 naming them."""
    refused = refused_dags(user)
    if refused:
        name = getattr(user, "get_name", lambda: str(user))()
        raise DashboardForbidden(
            status_code=403,
            detail=(
                f"user {name!r} may not read the DR DAGs {', '.join(refused)}: the DR dashboard shows "
                "their runs and data. Ask an Airflow admin for read access to them."
            ),
        )
    return user
