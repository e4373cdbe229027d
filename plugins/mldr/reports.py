"""Check and drill reports, kept in the ops bucket of both regions.

Every report is two objects: `reports/<kind>/<name>.json` (the document, for machines: the DR
dashboard, alerts, later comparisons) and `reports/<kind>/<name>.html` (the same, for a person).
They are written to the ops bucket of every region that answers, so a report about a region
outage survives in the region that is still up; a region that does not answer is logged, never
raised: losing one copy must not hide the finding itself.

Names start with a UTC timestamp (`report_name`), so S3's key order is time order and
`latest_reports` can read the newest without listing a year of history. Readers (the dashboard)
read reports through `latest_reports`, never by listing data buckets.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mldr.cloud.aws.clients import ClientFactory, Timeouts, aws_call
from mldr.errors import ConfigurationError, MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)

PREFIX = "reports"
#: Reading reports (the dashboard) must not wait on a dead region: one attempt, short read (a
#: stopped region accepts the TCP connection and never answers).
REPORT_TIMEOUTS = Timeouts(connect=1.0, read=4.0, max_attempts=1)
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
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
    factory: ClientFactory, topology: Topology, *, kind: str, name: str, document: dict[str, Any], html: str
) -> dict[str, str]:
    """Write the report to every region's ops bucket that answers; {region: s3 URI of the JSON}."""
    json_key, html_key = report_key(kind, name, "json"), report_key(kind, name, "html")
    body = json.dumps(document, indent=2, default=str, sort_keys=False).encode()
    page = html.encode()

    def put(region: str) -> str | None:
        bucket = topology.region(region).ops_bucket
        # the check's own clients: a new one costs more CPU than the two PUTs it would send
        s3 = factory.client("s3", region)
        try:
            with factory.silent.guard(region), aws_call(f"s3://{bucket}/{json_key}", region=region):
                s3.put_object(Bucket=bucket, Key=json_key, Body=body, ContentType="application/json")
            with aws_call(f"s3://{bucket}/{html_key}", region=region):
                s3.put_object(Bucket=bucket, Key=html_key, Body=page, ContentType="text/html; charset=utf-8")
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


def keep_check_results(
    factory: ClientFactory,
    topology: Topology,
    *,
    kind: str,
    label: str,
    document: dict[str, Any],
    html: str,
    metrics: Mapping[str, Mapping[Any, float]],
) -> dict[str, str]:
    """What every check run leaves behind: its report in both regions and each dataset's
    metrics in CloudWatch. Returns {region: s3 URI of the JSON report}."""
    from mldr.checks.metrics import publish
    from mldr.cloud.aws.cloud import AwsCloud  # TRANSITION (branch `platform`): publishing moves out

    uris = store_report(factory, topology, kind=kind, name=report_name(label), document=document, html=html)
    for dataset, values in metrics.items():
        publish(AwsCloud(factory), topology, dataset=dataset, values=values)
    return uris


def html_uri(json_uri: str) -> str:
    return json_uri[: -len(".json")] + ".html" if json_uri.endswith(".json") else json_uri


def _list_names(s3: Any, bucket: str, kind: str, start_after: str | None) -> list[str]:
    prefix = f"{PREFIX}/{kind}/"
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = prefix + start_after
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith(".json"):
                names.append(key[len(prefix) : -len(".json")])
    return names


def latest_reports(
    factory: ClientFactory, topology: Topology, kind: str, limit: int = 20
) -> list[StoredReport]:
    """The newest `limit` reports of one kind, newest first, from whichever regions answer."""
    _check_part("kind", kind)
    if limit < 1:
        raise ConfigurationError(f"limit must be at least 1, got {limit}")
    clients: dict[str, Any] = {}
    found: dict[str, list[str]] = {}  # name -> regions holding it
    now = datetime.now(UTC)
    for window in (*_WINDOWS, None):
        start_after = None if window is None else (now - window).strftime("%Y%m%dT%H%M%SZ")
        found.clear()
        for region in topology.region_names:
            bucket = topology.region(region).ops_bucket
            clients[region] = factory.client("s3", region, timeouts=REPORT_TIMEOUTS)
            try:
                # a region found down moments ago (here or by another read) is not asked again
                with factory.silent.guard(region), aws_call(f"s3://{bucket}/{PREFIX}/{kind}/", region=region):
                    names = _list_names(clients[region], bucket, kind, start_after)
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
                with aws_call(f"s3://{bucket}/{report_key(kind, name, 'json')}", region=region):
                    raw = (
                        clients[region]
                        .get_object(Bucket=bucket, Key=report_key(kind, name, "json"))["Body"]
                        .read()
                    )
                document = json.loads(raw)
                break
            except MldrError as exc:
                log.warning("report %s not readable in %s: %s", name, region, exc)
            except json.JSONDecodeError as exc:
                log.warning("report %s in %s is not valid JSON: %s", name, region, exc)
        if document is not None:
            out.append(StoredReport(kind=kind, name=name, uris=uris, document=document))
    return out


# --- HTML -------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f24;max-width:72rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f6f8fa}.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
code{font-size:.85rem}.muted{color:#57606a}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def verdict(ok: bool) -> str:
    return '<span class="ok">OK</span>' if ok else '<span class="bad">FAILED</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (for cells already rendered as HTML)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>"
        f'<p class="muted">generated {generated} by mldr</p>{body}</body></html>'
    )
