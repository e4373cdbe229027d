"""Report locations a person can open: the DR dashboard's link to a stored report, beside its
`s3://` copies, in the CLI's output and the drill's summary table."""

from __future__ import annotations

import pytest

from mldr.reports import BASE_URL_ENV, base_url_from_env, first_report_url, report_lines, report_url
from mldr.runbooks.drill.corruption_report import format_restore_summary
from mldr.runbooks.drill.report import format_summary

STORED = {
    "us-east-1": "s3://mldr-ops-us-east-1/reports/verification/20261203T200000Z-cli-all.json",
    "us-west-2": "s3://mldr-ops-us-west-2/reports/verification/20261203T200000Z-cli-all.json",
}
LINK = "http://localhost:8080/mldr/reports/verification/20261203T200000Z-cli-all"


@pytest.mark.parametrize(
    ("uri", "base", "expected"),
    [
        (STORED["us-east-1"], "http://localhost:8080", LINK),
        (STORED["us-west-2"].replace(".json", ".html"), "http://localhost:8080/", LINK),
        (
            "s3://ops/reports/drill/20261203T200000Z-logical-corruption-a1b2c3.html",
            "https://airflow.example.com/team-a",
            "https://airflow.example.com/team-a/mldr/reports/drill/20261203T200000Z-logical-corruption-a1b2c3",
        ),
        (STORED["us-east-1"], None, None),  # no base URL: no link, the s3:// paths only
        (STORED["us-east-1"], "", None),
        ("s3://ops/training/part-001.csv", "http://localhost:8080", None),  # not a report
        ("/tmp/reports/drill/x.html", "http://localhost:8080", None),
    ],
)
def test_report_url_is_the_dashboards_route_under_the_airflow_base_url(
    uri: str, base: str | None, expected: str | None
) -> None:
    assert report_url(uri, base) == expected


def test_the_base_url_comes_from_airflows_setting_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert base_url_from_env() is None
    monkeypatch.setenv(BASE_URL_ENV, " http://localhost:8080/ ")
    assert base_url_from_env() == "http://localhost:8080"


def test_report_lines_give_the_link_first_and_keep_every_s3_copy() -> None:
    assert report_lines(STORED, "http://localhost:8080") == [
        f"report: {LINK}",
        f"report (us-east-1): {STORED['us-east-1'].replace('.json', '.html')}",
        f"report (us-west-2): {STORED['us-west-2'].replace('.json', '.html')}",
    ]
    assert report_lines(STORED, None) == report_lines(STORED, "http://localhost:8080")[1:]
    assert first_report_url({}, "http://localhost:8080") is None


@pytest.mark.parametrize("format_table", [format_summary, format_restore_summary])
def test_the_drill_summary_table_shows_the_link(format_table: object) -> None:
    summary = {
        "drill_id": "drill-1",
        "scenario": "logical-corruption",
        "verdict": "pass",
        "reports": {"us-east-1": "s3://ops/reports/drill/x.html"},
        "report_url": "http://localhost:8080/mldr/reports/drill/x",
    }
    assert callable(format_table)
    table = format_table(summary)
    assert "  open:    http://localhost:8080/mldr/reports/drill/x" in table.splitlines()
    assert "s3://ops/reports/drill/x.html" in table, "the s3:// copy stays"
    assert "open:" not in format_table({**summary, "report_url": None})
