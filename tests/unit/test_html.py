"""The one HTML environment: every value escaped, pages from templates, SVG passed through as Markup."""

from __future__ import annotations

import jinja2
import pytest

from mldr.checks.verification.model import (
    DatasetVerification,
    Finding,
    KeyFinding,
    Mode,
    RecoveryPointCheck,
    RefCheck,
    RefState,
    RestoreResult,
    VerificationReport,
)
from mldr.checks.verification.present import render_html
from mldr.html import Markup, esc, render


def test_values_are_escaped_and_markup_is_kept() -> None:
    page = render(
        "report.html", title="<script>x</script>", generated="now", body=Markup('<svg id="plot"></svg>')
    )
    assert "<title>&lt;script&gt;x&lt;/script&gt;</title>" in page and "<script>" not in page
    assert '<svg id="plot"></svg>' in page
    assert esc(None) == "" and esc("a&b") == "a&amp;b"


def test_a_misspelt_template_variable_fails_the_render() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("report.html", title="t", body="")  # no `generated`


def test_verification_page_shows_each_finding_escaped() -> None:
    dataset = DatasetVerification(
        name="training<data>",
        kind="training_data",
        source_region="us-east-1",
        target_region="us-west-2",
        source_bucket="src",
        target_bucket="dst",
        prefix="data/",
        mode=Mode.FULL,
        threshold_seconds=60.0,
        objects_checked=3,
        bytes_checked=30,
        findings=[KeyFinding("data/a&b.csv", Finding.MISSING, "not in the replica")],
        basis_counts={"etag": 2},
        restore=RestoreResult(["data/c.csv"], ["data/c.csv"], []),
        recovery_points=[
            RecoveryPointCheck(
                "iris", "v1", [RefCheck("artifact", "models", "m.pkl", RefState.MISSING, "gone")]
            )
        ],
    )
    page = render_html(VerificationReport("sandbox", "t0", "t1", [dataset]).to_dict())
    assert page.startswith("<!doctype html>")
    assert "<title>Backup verification FAILED - sandbox</title>" in page
    assert '<h2>training&lt;data&gt; <span class="bad">FAILED</span></h2>' in page
    assert "<td>data/a&amp;b.csv</td><td>missing</td><td></td>" in page  # no basis: an empty cell
    assert "training&lt;data&gt;: 1 missing: data/a&amp;b.csv" in page  # the breach line
    assert "compared on: etag 2" in page and "1 of 1 sampled objects" in page
    assert "Model iris v1: <b>broken</b>" in page and "<td>gone</td>" in page
