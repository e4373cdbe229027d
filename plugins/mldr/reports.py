"""Check and drill reports, kept in the ops bucket of both regions.

Every report is two objects: `reports/<kind>/<name>.json` (the document, for machines: the DR
dashboard, alerts, later comparisons) and `reports/<kind>/<name>.html` (the same, for a person).
They are written to the ops bucket of every region that answers, so a report about a region
outage survives in the region that is still up; a region that does not answer is logged, never
raised: losing one copy must not hide the finding itself.

Names start with a UTC timestamp (`report_name`), so S3's key order is time order and
`latest_reports` can read the newest without listing a year of history. Readers (the dashboard)
read reports through `latest_reports`, never by listing data buckets. Reports publish nothing:
a check's metrics are sent by its caller (`mldr.checks.results`).

A person opens a report through the DR dashboard (`report_url`): an `s3://` path needs AWS
credentials and a console, the dashboard's link needs only an Airflow login with read access to
the DR DAGs. Both are printed: the `s3://` copies are what survives when Airflow is down.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from mldr.cloud import Cloud
from mldr.cloud.calls import Timeouts
from mldr.cloud.objects import ObjectStore
from mldr.errors import ConfigurationError, MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)

PREFIX = "reports"
#: Reading reports (the dashboard) must not wait on a dead region: one attempt, short read (a
#: stopped region accepts the TCP connection and never answers).
REPORT_TIMEOUTS = Timeouts(connect=1.0, read=4.0, max_attempts=1)
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
#: Where the Airflow API server mounts the DR dashboard (the plugin's `url_prefix`); its
#: `/reports/<kind>/<name>` route serves a stored report.
DASHBOARD_PATH = "/mldr"
#: Airflow's `[api] base_url` as the environment sets it: the break-glass CLI runs without Airflow.
BASE_URL_ENV = "AIRFLOW__API__BASE_URL"
_STORED = re.compile(rf"^s3://[^/]+/{PREFIX}/([^/]+)/([^/]+)\.(?:html|json)$")
#: How far back `latest_reports` looks, widening until it has enough.
_WINDOWS = (timedelta(days=1), timedelta(days=7), timedelta(days=31), timedelta(days=366))


@dataclass(frozen=True)
class StoredReport:
    kind: str
    name: str
    uris: dict[str, str]  # region -> s3:// URI of the JSON document
    document: dict[str, Any]


def _check_part(what: str, value: str) -> str:
    if not _SAFE.match(value) or ".." in value:
        raise ConfigurationError(f"report {what} {value!r} must be letters, digits, '.', '_', '=' or '-'")
    return value


def report_key(kind: str, name: str, extension: str) -> str:
    return f"{PREFIX}/{_check_part('kind', kind)}/{_check_part('name', name)}.{extension}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-")[:120] or "report"


def report_name(label: str, *, now: datetime | None = None) -> str:
    """`20261129T041800Z-<label>`: sorts in time order, readable in the S3 console."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{slug(label)}"


def store_report(
    cloud: Cloud, topology: Topology, *, kind: str, name: str, document: dict[str, Any], html: str
) -> dict[str, str]:
    """Write the report to every region's ops bucket that answers; {region: s3 URI of the JSON}."""
    json_key, html_key = report_key(kind, name, "json"), report_key(kind, name, "html")
    body = json.dumps(document, indent=2, default=str, sort_keys=False).encode()
    page = html.encode()

    def put(region: str) -> str | None:
        bucket = topology.region(region).ops_bucket
        # the check's own store (its clients): a new client costs more CPU than the two PUTs
        store = cloud.objects(region)
        try:
            with cloud.silent.guard(region):
                store.put(bucket, json_key, body, content_type="application/json")
            store.put(bucket, html_key, page, content_type="text/html; charset=utf-8")
        except MldrError as exc:
            log.warning("report %s/%s not stored in %s: %s", kind, name, region, exc)
            return None
        return f"s3://{bucket}/{json_key}"

    regions = topology.region_names
    with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="report") as pool:
        results = dict(zip(regions, pool.map(put, regions), strict=True))
    stored = {region: uri for region, uri in results.items() if uri}
    if not stored:
        log.error("report %s/%s could not be stored in any region; it is only in this log", kind, name)
    else:
        log.info("report %s/%s stored: %s", kind, name, ", ".join(stored.values()))
    return stored


def html_uri(json_uri: str) -> str:
    return json_uri[: -len(".json")] + ".html" if json_uri.endswith(".json") else json_uri


def base_url_from_env() -> str | None:
    """Airflow's base URL (`[api] base_url`) from the environment, or None when it is not set."""
    return os.environ.get(BASE_URL_ENV, "").strip().rstrip("/") or None


def report_url(uri: str, base_url: str | None) -> str | None:
    """The DR dashboard's link to the report stored at `uri` (`s3://<ops bucket>/reports/<kind>/
    <name>.html` or `.json`, in any region: the dashboard reads whichever answers); None without a
    base URL, or for a URI that is not a stored report's."""
    match = _STORED.match(uri)
    if not base_url or match is None:
        return None
    kind, name = match.groups()
    return f"{base_url.rstrip('/')}{DASHBOARD_PATH}/{PREFIX}/{quote(kind, safe='')}/{quote(name, safe='')}"


def first_report_url(uris: Mapping[str, str], base_url: str | None) -> str | None:
    """The dashboard link of a report stored in several regions (the same page in each)."""
    return next((url for url in (report_url(u, base_url) for u in uris.values()) if url), None)


def report_lines(uris: Mapping[str, str], base_url: str | None) -> list[str]:
    """How a CLI or a task log names a stored report: the dashboard link a person opens (when the
    base URL is known), then each region's `s3://` copy (readable while Airflow is down)."""
    url = first_report_url(uris, base_url)
    lines = [f"report: {url}"] if url else []
    return lines + [f"report ({region}): {html_uri(uri)}" for region, uri in uris.items()]


def _list_names(store: ObjectStore, bucket: str, kind: str, start_after: str | None) -> list[str]:
    prefix = f"{PREFIX}/{kind}/"
    after = prefix + start_after if start_after else None
    return [
        obj.key[len(prefix) : -len(".json")]
        for obj in store.list_objects(bucket, prefix=prefix, start_after=after)
        if obj.key.endswith(".json")
    ]


def latest_reports(cloud: Cloud, topology: Topology, kind: str, limit: int = 20) -> list[StoredReport]:
    """The newest `limit` reports of one kind, newest first, from whichever regions answer."""
    _check_part("kind", kind)
    if limit < 1:
        raise ConfigurationError(f"limit must be at least 1, got {limit}")
    stores: dict[str, ObjectStore] = {}
    found: dict[str, list[str]] = {}  # name -> regions holding it
    now = datetime.now(UTC)
    for window in (*_WINDOWS, None):
        start_after = None if window is None else (now - window).strftime("%Y%m%dT%H%M%SZ")
        found.clear()
        for region in topology.region_names:
            bucket = topology.region(region).ops_bucket
            stores[region] = cloud.objects(region, timeouts=REPORT_TIMEOUTS)
            try:
                # a region found down moments ago (here or by another read) is not asked again
                with cloud.silent.guard(region):
                    names = _list_names(stores[region], bucket, kind, start_after)
            except MldrError as exc:
                log.warning("reports in %s not readable: %s", region, exc)
                continue
            for name in names:
                found.setdefault(name, []).append(region)
        if len(found) >= limit:
            break
    out = []
    for name in sorted(found, reverse=True)[:limit]:
        uris = {
            r: f"s3://{topology.region(r).ops_bucket}/{report_key(kind, name, 'json')}" for r in found[name]
        }
        document = None
        for region in found[name]:
            bucket = topology.region(region).ops_bucket
            try:
                document = stores[region].get_json(bucket, report_key(kind, name, "json"))
                break
            except MldrError as exc:
                log.warning("report %s not readable in %s: %s", name, region, exc)
            except json.JSONDecodeError as exc:
                log.warning("report %s in %s is not valid JSON: %s", name, region, exc)
        if document is not None:
            out.append(StoredReport(kind=kind, name=name, uris=uris, document=document))
    return out
