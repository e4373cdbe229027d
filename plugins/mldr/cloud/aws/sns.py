"""SNS as the runbooks' alerts (`mldr.cloud.Alerts`): the region's alert topic from the topology."""

from __future__ import annotations

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory
from mldr.cloud.aws.errors import aws_call
from mldr.cloud.calls import Timeouts

#: SNS refuses a longer subject.
MAX_SUBJECT = 100


class SnsAlerts:
    def __init__(self, factory: ClientFactory, region: str, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.region = region
        self.timeouts = timeouts
        self.topic = factory.topology.region(region).alert_topic_arn

    def send(self, *, subject: str, message: str) -> None:
        # An alert is a probe-sized call: it must not hold a runbook up when the region is down.
        client = self.factory.client("sns", self.region, timeouts=self.timeouts or PROBE_TIMEOUTS)
        with aws_call(f"SNS topic {self.topic}", region=self.region):
            client.publish(TopicArn=self.topic, Subject=subject[:MAX_SUBJECT], Message=message)
