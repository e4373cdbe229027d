"""On-call's pager in the sandbox: an SQS queue subscribed to a region's alert topic.

Made as the sandbox's admin: subscribing a queue is what a person does when setting up paging,
not something the DR operator role may do (the sandbox enforces its policy)."""

from __future__ import annotations

import uuid
from typing import Any

from mldr.sandbox.manager import SandboxState
from mldr.topology import Topology
from tests.admin import admin_client


def listen_on_alerts(state: SandboxState, topology: Topology, region: str) -> tuple[Any, str]:
    """(sqs client, queue url): a fresh queue subscribed to the region's alert topic."""
    sqs, sns = admin_client(state, "sqs", region), admin_client(state, "sns", region)
    queue_url = sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topology.region(region).alert_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return sqs, queue_url
