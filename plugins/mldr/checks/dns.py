"""TRANSITION (branch `platform`): the drill still calls `dns_answer(factory, topology)`; it is
converted to `cloud.traffic().answer()` when it has moved (Homes), and this module goes."""

from __future__ import annotations

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.topology import Topology


def dns_answer(factory: ClientFactory, topology: Topology) -> str:
    return AwsCloud(factory).traffic().answer()
