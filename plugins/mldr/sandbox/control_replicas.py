"""The sandbox's control-state global table: two replicas, copied asynchronously, last writer wins.

A DynamoDB global table without multi-Region strong consistency accepts a write in whichever
replica it reaches and copies it to the others a moment later; when both replicas changed the
same item in between, the later write wins everywhere and the other is silently lost. So two
compare-and-sets sent to different replicas can both succeed. The sandbox keeps the table on its
global server in two regions (two separate moto backends) and this copier plays the global
table's replication between them, every `lag_seconds`. `split` stops it (the replicas diverge,
as in a partition or a replication stall); `join` lets it converge again, last writer winning.

Which write is later: the item's `updated_at` (every lease carries one), else the write seen
first in the replicas' order. The copier runs in the replicator process (`--config`'s
`control` section).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("mldr.sandbox.control_replicas")

Item = dict[str, Any]


def _stamp(item: Item | None) -> str:
    return str(item.get("updated_at", {}).get("S", "")) if item else ""


class ControlTableCopier:
    def __init__(self, endpoint: str, table: str, regions: list[str], *, lag_seconds: float = 0.5) -> None:
        self.table = table
        self.regions = list(regions)
        self.lag_seconds = lag_seconds
        self.clients = {
            r: boto3.client(
                "dynamodb",
                region_name=r,
                endpoint_url=endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
            )
            for r in self.regions
        }
        self.split = False
        self.copied = 0
        self.lost = 0  # writes overwritten by a later write on the other replica
        self._converged: dict[str, Item] = {}  # pk -> the value both replicas last agreed on
        self.lock = threading.Lock()

    def _scan(self, region: str) -> dict[str, Item]:
        items: dict[str, Item] = {}
        for page in self.clients[region].get_paginator("scan").paginate(TableName=self.table):
            for item in page.get("Items", []):
                items[item["pk"]["S"]] = item
        return items

    def sync_once(self) -> None:
        """Copy every item changed on one replica since they last agreed to the other."""
        with self.lock:
            if self.split:
                return
            replicas = {r: self._scan(r) for r in self.regions}
            for pk in sorted({pk for items in replicas.values() for pk in items}):
                base = self._converged.get(pk)
                changed = [r for r in self.regions if replicas[r].get(pk) != base]
                if not changed:
                    continue
                winner = max(changed, key=lambda r: (_stamp(replicas[r].get(pk)), -self.regions.index(r)))
                value = replicas[winner].get(pk)
                self.lost += len([r for r in changed if replicas[r].get(pk) != value])
                for region in self.regions:
                    if replicas[region].get(pk) == value:
                        continue
                    client = self.clients[region]
                    if value is None:
                        client.delete_item(TableName=self.table, Key={"pk": {"S": pk}})
                    else:
                        client.put_item(TableName=self.table, Item=value)
                    self.copied += 1
                if value is None:
                    self._converged.pop(pk, None)
                else:
                    self._converged[pk] = value

    def set_split(self, split: bool) -> None:
        with self.lock:
            self.split = split
        log.info("control-state replicas %s", "split: not copying" if split else "joined: copying")

    def stats(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "copied": self.copied,
            "lost": self.lost,
            "lag_seconds": self.lag_seconds,
        }

    def run(self, stop: threading.Event) -> None:
        log.info("copying control table %s between %s", self.table, ", ".join(self.regions))
        while not stop.is_set():
            try:
                self.sync_once()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    log.warning("control table copy: %s", exc)  # not provisioned yet: quietly wait
            except BotoCoreError as exc:  # the global server busy: next round
                log.warning("control table copy: %s", exc)
            stop.wait(self.lag_seconds)
