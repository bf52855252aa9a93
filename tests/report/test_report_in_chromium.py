"""The HTML report is self-contained: it loads in Chromium with no request beyond itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import stages
from tests.report.chromium import chromium_path, load_page


@pytest.fixture(scope="module")
def report(tmp_path_factory, small_delivery):
    from pipeline.config import Settings

    tmp = tmp_path_factory.mktemp("report")
    settings = Settings(
        warehouse_url=f"sqlite:///{tmp / 'w.db'}", report_dir=tmp / "reports", demo=True
    )
    return stages.run_all(settings, small_delivery.parent).report


def test_report_has_every_section_and_no_external_reference(report):
    html = Path(report).read_text(encoding="utf-8")
    for section in (
        "Cohort",
        "Response rates",
        "Kaplan–Meier",
        "Numbers at risk",
        "Median time until pain returns",
        "Restricted mean",
        "Cox proportional hazards",
        "Dose–response",
        "Proportional-hazards diagnostics",
        "Interval censoring",
        "Competing risks",
        "Adverse events by route and dose",
        "Data quality",
        "Lineage",
    ):
        assert section in html, section
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_small_counts_are_suppressed(report):
    html = Path(report).read_text(encoding="utf-8")
    cells = [int(c) for c in re.findall(r"<td>(\d+)</td>", html)]
    assert "&lt;11" in html
    assert cells  # tables rendered
    # No count column shows 1-10 (step numbers 1-5 of the attrition table are labels, not counts).
    numbers_at_risk = re.findall(r"<th>[^<]+</th>\s*((?:<td>[^<]*</td>\s*)+)</tr>", html)
    for row in numbers_at_risk:
        for value in re.findall(r"<td>([^<]*)</td>", row):
            if value.isdigit():
                assert int(value) == 0 or int(value) >= 11, row


@pytest.mark.skipif(chromium_path() is None, reason="Debian package chromium is not installed")
def test_report_loads_in_headless_chromium_without_errors(report):
    page = load_page(f"file://{report}")
    assert page.title.startswith("relief")
    assert page.failed == []
    assert page.console_errors == [] and page.exceptions == []
    external = [r for r in page.requests if not r.startswith(("file://", "data:"))]
    assert external == []
