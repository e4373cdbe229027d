"""Data at risk: the versions written in a region whose replica is not in the other one.

What an unplanned failover leaves behind (until the source returns) can be any number of keys,
but a step's result is stored in the operation record - one DynamoDB item, at most 400 KB. So
the result carries a summary (counts, bytes, oldest age, the oldest `AT_RISK_LISTED` versions)
and a pointer to the full list: a JSON document written to the ops bucket of every region that
answers (the source is often the region that is down). `load_full_list` reads it back for
whatever needs every key.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter

from mldr.checks.replication_status import BacklogItem, ReplicationState, status_source
from mldr.cloud import Cloud
from mldr.cloud.calls import Timeouts
from mldr.cloud.control import now_iso
from mldr.errors import MldrError, RegionUnreachable
from mldr.runbooks.engine import Context
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: Versions named inline in a result (the oldest first); the rest are only in the full list.
AT_RISK_LISTED = 50
PREFIX = "data-at-risk"
DOCUMENT_KIND = "mldr-data-at-risk"
#: Writing the list must not wait long on a region that is down (it is often the source), but a
#: list of a million keys is a few hundred MB: the read timeout is the upload's, per attempt.
LIST_TIMEOUTS = Timeouts(connect=1.0, read=30.0, max_attempts=2)


@dataclass(frozen=True, kw_only=True)
class AtRiskVersion:
    """A version written in the source whose replica is not in the other region."""

    bucket: str
    key: str
    version_id: str
    bytes: int
    age_seconds: float
    state: ReplicationState


@dataclass(frozen=True, kw_only=True)
class FullList:
    """Where the full list of versions at risk is: the same key in each region's ops bucket."""

    key: str
    regions: tuple[str, ...]  # the regions that stored it; empty: none answered
    uris: tuple[str, ...]  # s3:// URIs, one per region in `regions`, for a person
    not_stored: tuple[str, ...] = ()  # "<region>: why", for each region that did not take it


@dataclass(frozen=True, kw_only=True)
class DataAtRisk:
    measured: Literal[True] = True
    objects: int
    bytes: int
    oldest_age_seconds: float
    failed: int
    #: the oldest AT_RISK_LISTED versions; all of them only when `objects` is no more
    first_keys: tuple[AtRiskVersion, ...]
    #: where every version is listed (None: nothing at risk)
    full_list: FullList | None


@dataclass(frozen=True, kw_only=True)
class RiskUnknown:
    """The replication status could not be read: the data at risk is not known."""

    measured: Literal[False] = False
    reason: str


def list_key(operation_id: str, label: str) -> str:
    return f"{PREFIX}/{operation_id}/{label}.json"


def _version(item: BacklogItem) -> AtRiskVersion:
    return AtRiskVersion(
        bucket=item.bucket,
        key=item.key,
        version_id=item.version_id,
        bytes=item.size,
        age_seconds=round(item.age_seconds, 3),
        state=item.state,
    )


_VERSIONS = TypeAdapter(tuple[AtRiskVersion, ...])


def store_full_list(cloud: Cloud, topology: Topology, *, key: str, document: dict[str, Any]) -> FullList:
    """Write the list to the ops bucket of every region that answers, in parallel; a region
    that does not answer (or was found silent moments ago) is named, never raised: the failover
    goes on, and the list is in the regions that took it."""

    def put(region: str) -> str | None:
        bucket = topology.region(region).ops_bucket
        try:
            with cloud.silent.guard(region):
                cloud.objects(region, timeouts=LIST_TIMEOUTS).put_json(bucket, key, document)
        except MldrError as exc:
            log.warning("data at risk: the full list was not stored in %s: %s", region, exc)
            return f"{region}: {exc}"
        return None

    regions = topology.region_names
    with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="at-risk") as pool:
        problems = dict(zip(regions, pool.map(put, regions), strict=True))
    stored = tuple(r for r in regions if problems[r] is None)
    return FullList(
        key=key,
        regions=stored,
        uris=tuple(f"s3://{topology.region(r).ops_bucket}/{key}" for r in stored),
        not_stored=tuple(why for why in problems.values() if why is not None),
    )


def data_at_risk(ctx: Context, source: str, *, label: str) -> DataAtRisk | RiskUnknown:
    """Versions written in `source` whose replica is not in the other region: what an
    unplanned failover would leave behind (until the source returns). `label` names this
    measurement in the full list's key (`data-at-risk/<operation>/<label>.json`)."""
    statuses = status_source(ctx.topology, ctx.cloud)
    items: list[BacklogItem] = []
    try:
        for dataset in ctx.topology.datasets:
            items += statuses.backlog(region=source, bucket=dataset.buckets[source])
    except (RegionUnreachable, MldrError) as exc:
        return RiskUnknown(reason=f"replication status unavailable: {exc}")
    items.sort(key=lambda i: i.created_at)
    versions = tuple(_version(i) for i in items)
    summary: dict[str, Any] = {
        "objects": len(items),
        "bytes": sum(i.size for i in items),
        "oldest_age_seconds": versions[0].age_seconds if versions else 0.0,
        "failed": sum(1 for i in items if i.state is ReplicationState.FAILED),
    }
    full_list = None
    if versions:
        document = {
            "kind": DOCUMENT_KIND,
            "version": 1,
            "operation_id": ctx.record.id,
            "measured": label,
            "source": source,
            "measured_at": now_iso(),
            **summary,
            "keys": _VERSIONS.dump_python(versions, mode="json"),
        }
        full_list = store_full_list(
            ctx.cloud, ctx.topology, key=list_key(ctx.record.id, label), document=document
        )
    return DataAtRisk(**summary, first_keys=versions[:AT_RISK_LISTED], full_list=full_list)


def load_full_list(cloud: Cloud, topology: Topology, risk: DataAtRisk) -> tuple[AtRiskVersion, ...]:
    """Every version at risk, oldest first, read from the first region that holds the list."""
    if risk.full_list is None:
        return risk.first_keys
    if not risk.full_list.regions:
        raise MldrError(
            f"the full list of {risk.objects} version(s) at risk was stored in no region "
            f"({'; '.join(risk.full_list.not_stored)}); only the first {len(risk.first_keys)} are recorded"
        )
    problems = []
    for region in risk.full_list.regions:
        bucket = topology.region(region).ops_bucket
        try:
            document = cloud.objects(region, timeouts=LIST_TIMEOUTS).get_json(bucket, risk.full_list.key)
            versions = _VERSIONS.validate_python(document["keys"])
        except (MldrError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"s3://{bucket}/{risk.full_list.key}: {exc}")
            continue
        if len(versions) != risk.objects:
            problems.append(
                f"s3://{bucket}/{risk.full_list.key} lists {len(versions)} version(s), not {risk.objects}"
            )
            continue
        return versions
    raise MldrError("the full list of versions at risk could not be read: " + "; ".join(problems))


def describe_risk(risk: DataAtRisk | RiskUnknown) -> str:
    if isinstance(risk, RiskUnknown):
        return f"data at risk unknown ({risk.reason})"
    if not risk.objects:
        return "no data at risk: every version is replicated"
    shown = ", ".join(f"{k.bucket}/{k.key}" for k in risk.first_keys[:5])
    more = f" and {risk.objects - 5} more" if risk.objects > 5 else ""
    text = (
        f"DATA AT RISK: {risk.objects} object(s), {risk.bytes} bytes not replicated, oldest "
        f"{risk.oldest_age_seconds:.1f}s old: {shown}{more}"
    )
    if risk.full_list is not None:
        if risk.full_list.uris:
            text += f"; full list: {' and '.join(risk.full_list.uris)}"
        else:
            text += (
                f"; the full list could not be stored ({'; '.join(risk.full_list.not_stored)}): "
                f"only the first {len(risk.first_keys)} are recorded"
            )
    return text
