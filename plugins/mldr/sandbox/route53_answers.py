"""The two Route 53 data-plane answers moto lacks, rendered as Route 53's REST-XML API does.

`TestDNSAnswer` answers what a resolver would get for the name: for a failover alias record,
the alias target's addresses (never its hostname), for a plain A record its values.
`GetHealthCheckStatus` reports each checker's last observation; the edge has one observer,
reported from the checker regions Route 53 lists, so `HealthyThreshold`-style arithmetic over
observations (more than 18% healthy) gives the edge's own verdict. Pure functions: the edge
feeds in the answer and the probe state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.sax.saxutils import escape

XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"
#: Where Route 53's checkers report from (a few of them; the edge is all of them).
CHECKER_REGIONS = ("us-east-1", "us-west-1", "eu-west-1")


def test_dns_answer_xml(*, record_name: str, record_type: str, addresses: Sequence[str]) -> str:
    """`TestDNSAnswerResponse`: NOERROR with the addresses, NXDOMAIN-like empty data if none."""
    entries = "".join(f"<RecordDataEntry>{escape(a)}</RecordDataEntry>" for a in addresses)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<TestDNSAnswerResponse xmlns="{XMLNS}">'
        "<Nameserver>ns-sandbox.mldr.internal</Nameserver>"
        f"<RecordName>{escape(record_name)}</RecordName><RecordType>{escape(record_type)}</RecordType>"
        f"<RecordData>{entries}</RecordData>"
        f"<ResponseCode>{'NOERROR' if addresses else 'SERVFAIL'}</ResponseCode><Protocol>UDP</Protocol>"
        "</TestDNSAnswerResponse>"
    )


def status_report(*, healthy: bool | None, error: str | None) -> str:
    """The StatusReport text Route 53 writes: 'Success: ...' or 'Failure: ...'."""
    if healthy is None:
        return "Failure: no observation yet"
    if healthy:
        return "Success: HTTP Status Code 200, OK"
    return f"Failure: {error or 'the endpoint did not answer healthy'}"


def health_check_status_xml(*, healthy: bool | None, error: str | None, checked_at: float | None) -> str:
    when = datetime.fromtimestamp(checked_at or 0.0, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    report = escape(status_report(healthy=healthy, error=error))
    observations = "".join(
        f"<HealthCheckObservation><Region>{region}</Region><IPAddress>127.0.0.1</IPAddress>"
        f"<StatusReport><Status>{report}</Status><CheckedTime>{when}</CheckedTime></StatusReport>"
        "</HealthCheckObservation>"
        for region in CHECKER_REGIONS
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<GetHealthCheckStatusResponse xmlns="{XMLNS}">'
        f"<HealthCheckObservations>{observations}</HealthCheckObservations></GetHealthCheckStatusResponse>"
    )


def not_found_xml(code: str, message: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{XMLNS}"><Error>'
        f"<Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        "</Error><RequestId>sandbox</RequestId></ErrorResponse>"
    )
