"""On-call's pager in the sandbox: an SQS queue subscribed to a region's alert topic.

Made as the sandbox's admin: subscribing a queue is what a person does when setting up paging,
not something the DR operator role may do (the sandbox enforces its policy)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from mldr.sandbox.iam import ADMIN_KEYS
from mldr.sandbox.manager import SandboxState
from mldr.topology import Topology


def listen_on_alerts(state: SandboxState, topology: Topology, region: str) -> tuple[Any, str]:
    """(sqs client, queue url): a fresh queue subscribed to the region's alert topic."""
    session = boto3.session.Session(
        aws_access_key_id=ADMIN_KEYS[0], aws_secret_access_key=ADMIN_KEYS[1], region_name=region
    )
    sqs = session.client("sqs", endpoint_url=state.moto[region])
    sns = session.client("sns", endpoint_url=state.moto[region])
    queue_url = sqs.create_queue(QueueName=f"alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topology.region(region).alert_topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return sqs, queue_url
