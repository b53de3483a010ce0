"""Period reports: every format carries the same figures; HTML is one self-contained file; the
command refuses bad dates and groups with exit 2."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from test_cli import assert_refused, ok, run
from test_kpis import at, day  # noqa: F401 - the worked Monday, as a fixture

from opconsole.reports import RENDER, build


@pytest.fixture
def monday(desk, day):  # noqa: F811
    return build(desk.store, desk.config, at(23, 0, 0), at(24, 0, 0))


def test_json_holds_the_figures(monday):
    data = json.loads(RENDER["json"](monday))
    kpis = {k["key"]: k for k in data["kpis"]}
    assert (kpis["fcr"]["numerator"], kpis["fcr"]["denominator"]) == (1, 4)
    assert kpis["sla_resolution"]["value"] is None  # n/a, not 0
    assert data["by_category"]["network.slow"] == 2 and sum(data["by_channel"].values()) == 6
    assert data["heatmap"]["arrivals"][0][11] == 1 and data["heatmap"]["arrivals"][0][9] == 1  # Monday, MSK hours
    assert data["escalations_by_group"] == {"network": 2}
    assert [r["reason"] for r in data["escalation_reasons"]] == ["slow link"]
    assert data["operators"] == [{"operator": "op1", "taken": 7, "resolved": 5, "escalated": 2, "first_contact": 1}]


def test_markdown_reads_as_tables(monday):
    text = RENDER["md"](monday)
    assert text.startswith("# Service report: 2026-11-23 – 2026-11-23")
    assert "| First-contact resolution | 25.0 % (1 of 4) | ≥ 90 % MISSED |" in text
    assert "| SLA compliance, resolution | n/a |" in text
    assert "Mon  " in text and "Tickets moved between groups too often: 1" in text


def test_csv_is_one_table(monday):
    rows = list(csv.DictReader(io.StringIO(RENDER["csv"](monday))))
    fcr = next(r for r in rows if r["section"] == "kpi" and r["key"] == "fcr")
    assert (fcr["numerator"], fcr["denominator"]) == ("1", "4")
    assert sum(int(r["value"]) for r in rows if r["section"] == "arrivals") == 6


def test_html_is_self_contained(monday):
    page = RENDER["html"](monday)
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert not re.search(r"""(src|href)\s*=|<script|<link|@import|url\(""", page, re.IGNORECASE)
    assert "25.0 % (1 of 4)" in page


def test_the_report_command(tmp_path):
    db = tmp_path / "r.db"
    ok(db, "init", "--site", "MSK")
    ok(db, "ticket", "new", "--phone", "+7 495 123-45-67", "--subject", "VPN drops", "--category", "vpn.drops")
    out = tmp_path / "report.html"
    written = ok(db, "report", "--from", "2026-01-01", "--to", "2030-12-31", "--format", "html", "--output", str(out))
    assert "report written" in written.stderr and "Escalation rate" in out.read_text()
    shown = json.loads(ok(db, "report", "--from", "2026-01-01", "--to", "2030-12-31", "--format", "json").stdout)
    assert shown["by_channel"] == {"phone": 1}
    assert_refused(run(db, "report", "--from", "2026-13-01", "--to", "2026-12-31"), "is not a date")
    assert_refused(run(db, "report", "--from", "2026-12-02", "--to", "2026-12-01"), "is before --from")
    assert_refused(run(db, "report", "--from", "2026-12-01", "--to", "2026-12-01", "--group", "nope"), "unknown group")
