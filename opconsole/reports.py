"""Period reports for shift leads and their clients: the KPIs, volumes by channel and category, the
arrivals heatmap, escalations and operators' figures; as Markdown, CSV, JSON or one HTML file.

The data is read with a few bulk queries (`load`), the figures come from the pure `opconsole.kpis`.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Iterator

from opconsole import kpis
from opconsole.config import Config
from opconsole.domain import from_iso, to_iso
from opconsole.migrations import OPEN_STATUS_SQL
from opconsole.store import Store

FORMATS = ("md", "csv", "json", "html")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LOOKBACK = timedelta(days=30)  # tickets created this long before the period may still fall due in it


@dataclass(frozen=True)
class PeriodReport:
    start: datetime
    end: datetime
    group: str | None
    zone: tzinfo
    figures: kpis.Report
    by_channel: dict[str, int]
    by_category: dict[str, int]
    heatmap: list[list[int]]  # [weekday][hour] arrivals, in the site's time zone
    escalation_reasons: list[tuple[str, int]]
    operators: list[dict[str, Any]]


def site_zone(config: Config) -> tzinfo:
    """The time zone of the site's business-hours calendar, else UTC."""
    zones = [getattr(target.calendar, "timezone", None) for target in config.sla.values()]
    return next((zone for zone in zones if zone is not None), timezone.utc)


@dataclass(frozen=True)
class Happening:
    """One event of a ticket, as the report reads it."""
    step: kpis.Step
    actor: str
    note: str | None


FACT_COLUMNS = ("id, created_at, channel, category, response_due, resolution_due, first_response_at, "
                "first_contact_resolution")
# An event counts as it happened on the server: not if it was refused there, and not if it was a status
# change or an assignment that lost to another console's (those are all or nothing).
APPLIED_SQL = ("(outcome IS NULL OR outcome = 'applied' OR (outcome = 'conflict' AND json_type(outcome_detail, "
               "'$.status') IS NULL AND json_type(outcome_detail, '$.group_id') IS NULL AND "
               "json_type(outcome_detail, '$.operator') IS NULL))")
CHUNK = 500  # ids per IN (...) query


def chunks(ids: list[str]) -> Iterator[tuple[list[str], str]]:
    """`ids` in pieces small enough for one query each, with the placeholders of an IN (...) list."""
    for first in range(0, len(ids), CHUNK):
        chunk = ids[first:first + CHUNK]
        yield chunk, ", ".join("?" * len(chunk))


def load(store: Store, start: datetime, end: datetime) -> list[tuple[kpis.Facts, list[Happening]]]:
    """Tickets that may count in [start, end), each with its history: those created in it or in the 30
    days before, those changed in it, and those still open."""
    rows = store.conn.execute(
        f"SELECT {FACT_COLUMNS} FROM tickets WHERE created_at < ? AND (created_at >= ? OR updated_at >= ? "
        f"OR {OPEN_STATUS_SQL})", (to_iso(end), to_iso(start - LOOKBACK), to_iso(start))).fetchall()
    return with_histories(store, rows)


def load_ids(store: Store, ids: list[str]) -> list[tuple[kpis.Facts, list[Happening]]]:
    rows = []
    for chunk, marks in chunks(ids):
        rows += store.conn.execute(f"SELECT {FACT_COLUMNS} FROM tickets WHERE id IN ({marks})", chunk).fetchall()
    return with_histories(store, rows)


def with_histories(store: Store, rows: list[tuple]) -> list[tuple[kpis.Facts, list[Happening]]]:
    """The facts of tickets (rows of FACT_COLUMNS) with their histories. Only the columns the figures
    need are read, and SQLite pulls the status and group out of each event's changes."""
    history: dict[str, list[Happening]] = {row[0]: [] for row in rows}
    ids = list(history)
    for chunk, marks in chunks(ids):
        for entity_id, at, op, actor, note, status, group in store.conn.execute(
                "SELECT entity_id, at, op, actor, note, json_extract(changes, '$.status[1]'), "
                f"json_extract(changes, '$.group_id[1]') FROM events WHERE entity_id IN ({marks}) "
                f"AND {APPLIED_SQL} ORDER BY seq", chunk):
            history[entity_id].append(Happening(kpis.Step(from_iso(at), op, status, group), actor, note))
    return [(kpis.facts_of(row[0], from_iso(row[1]), row[2], row[3], from_iso(row[4]), from_iso(row[5]),
                           from_iso(row[6]), bool(row[7]), [h.step for h in history[row[0]]]), history[row[0]])
            for row in rows]


def build(store: Store, config: Config, start: datetime, end: datetime, group: str | None = None,
          now: datetime | None = None) -> PeriodReport:
    loaded = load(store, start, end)
    if group:
        loaded = [item for item in loaded if group in {g for _, g in item[0].groups}]
    figures = kpis.compute([f for f, _ in loaded], start, end, config.first_line, now, config.targets)
    created = [f for f, _ in loaded if start <= f.created_at < end]
    zone = site_zone(config)
    heatmap = [[0] * 24 for _ in WEEKDAYS]
    for f in created:
        local = f.created_at.astimezone(zone)
        heatmap[local.weekday()][local.hour] += 1
    reasons = Counter(h.note or "(no reason)" for _, happenings in loaded for h in happenings
                      if h.step.op == "ticket.escalate" and start <= h.step.at < end)
    return PeriodReport(
        start, end, group, zone, figures,
        dict(Counter(f.channel for f in created).most_common()),
        dict(Counter(f.category or "(unclassified)" for f in created).most_common()),
        heatmap, reasons.most_common(10), operator_figures(loaded, start, end, config.first_line))


def operator_figures(loaded: list[tuple[kpis.Facts, list[Happening]]], start: datetime, end: datetime,
                     first_line: str) -> list[dict[str, Any]]:
    """Per operator: tickets taken, resolved and escalated in the period, and resolved on first contact."""
    rows: dict[str, Counter] = {}
    names = {"ticket.take": "taken", "ticket.resolve": "resolved", "ticket.escalate": "escalated"}
    for facts, happenings in loaded:
        resolves = [h for h in happenings if h.step.op == "ticket.resolve"]
        final = resolves[-1] if resolves else None
        for h in happenings:
            if h.step.op not in names or not start <= h.step.at < end:
                continue
            counts = rows.setdefault(h.actor, Counter())
            counts[names[h.step.op]] += 1
            if h is final and kpis.first_contact(facts, first_line):
                counts["first_contact"] += 1
    return [{"operator": login, "taken": c["taken"], "resolved": c["resolved"], "escalated": c["escalated"],
             "first_contact": c["first_contact"]} for login, c in sorted(rows.items())]


# --- rendering --------------------------------------------------------------------------------

def kpi_text(kpi: kpis.Kpi) -> str:
    if kpi.value is None:
        return "n/a"
    if kpi.unit == "%":
        return f"{kpi.value * 100:.1f} % ({kpi.numerator:g} of {kpi.denominator:g})"
    return f"{kpi.value:.0f} s (N={kpi.denominator:g})"


def target_text(kpi: kpis.Kpi) -> str:
    if kpi.target is None:
        return ""
    sign = "≥" if kpi.higher_is_better else "≤"
    value = f"{kpi.target * 100:g} %" if kpi.unit == "%" else f"{kpi.target:g} s"
    verdict = {True: "met", False: "MISSED", None: ""}[kpi.met]
    return f"{sign} {value} {verdict}".strip()


def period_text(report: PeriodReport) -> str:
    first = report.start.astimezone(report.zone).date()
    last = (report.end - timedelta(microseconds=1)).astimezone(report.zone).date()
    return f"{first} – {last}" + (f", group {report.group}" if report.group else "")


def as_data(report: PeriodReport) -> dict[str, Any]:
    return {
        "period": {"from": report.start.isoformat(), "to": report.end.isoformat(), "group": report.group},
        "kpis": [{"key": k.key, "label": k.label, "value": k.value, "numerator": k.numerator,
                  "denominator": k.denominator, "unit": k.unit, "target": k.target, "met": k.met}
                 for k in report.figures.kpis],
        "backlog": report.figures.backlog,
        "by_channel": report.by_channel,
        "by_category": report.by_category,
        "heatmap": {"weekdays": list(WEEKDAYS), "arrivals": report.heatmap},
        "escalations_by_group": report.figures.escalations_by_group,
        "escalation_reasons": [{"reason": r, "count": n} for r, n in report.escalation_reasons],
        "football": report.figures.football,
        "operators": report.operators,
    }


def to_json(report: PeriodReport) -> str:
    return json.dumps(as_data(report), ensure_ascii=False, indent=2)


def to_csv(report: PeriodReport) -> str:
    """One table: section, key, value (and for KPIs numerator, denominator, target)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", "value", "numerator", "denominator", "target"])
    for k in report.figures.kpis:
        writer.writerow(["kpi", k.key, "" if k.value is None else k.value, k.numerator, k.denominator,
                         "" if k.target is None else k.target])
    for section, values in (("backlog", report.figures.backlog), ("channel", report.by_channel),
                            ("category", report.by_category),
                            ("escalation_group", report.figures.escalations_by_group),
                            ("escalation_reason", dict(report.escalation_reasons))):
        for key, value in values.items():
            writer.writerow([section, key, value, "", "", ""])
    for day, hours in zip(WEEKDAYS, report.heatmap):
        for hour, count in enumerate(hours):
            writer.writerow(["arrivals", f"{day} {hour:02d}", count, "", "", ""])
    for row in report.operators:
        for name in ("taken", "resolved", "escalated", "first_contact"):
            writer.writerow([f"operator_{name}", row["operator"], row[name], "", "", ""])
    return out.getvalue()


def md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def to_markdown(report: PeriodReport) -> str:
    f = report.figures
    lines = [f"# Service report: {period_text(report)}", "", "## KPIs", ""]
    lines += md_table(["KPI", "value", "target"], [[k.label, kpi_text(k), target_text(k)] for k in f.kpis])
    lines += ["## Backlog at the end of the period", ""]
    lines += md_table(["age", "tickets"], [[age, n] for age, n in f.backlog.items()])
    lines += ["## Arrivals by channel", ""] + md_table(["channel", "tickets"], [list(i) for i in report.by_channel.items()])
    lines += ["## Top categories", ""] + md_table(["category", "tickets"],
                                                  [list(i) for i in list(report.by_category.items())[:10]])
    lines += ["## Arrivals by weekday and hour", "", "```", heatmap_text(report.heatmap), "```", ""]
    lines += ["## Escalations", ""] + md_table(["group", "tickets"], [list(i) for i in f.escalations_by_group.items()])
    lines += md_table(["reason", "times"], [[r, n] for r, n in report.escalation_reasons])
    lines += ["## Operators", ""] + md_table(["operator", "taken", "resolved", "escalated", "first contact"],
                                             [list(row.values()) for row in report.operators])
    if f.football:
        lines += [f"Tickets moved between groups too often: {len(f.football)}", ""]
    return "\n".join(lines)


def heatmap_text(heatmap: list[list[int]]) -> str:
    """Arrivals as shades, one row a weekday, one column an hour."""
    shades = " ░▒▓█"
    top = max((n for row in heatmap for n in row), default=0) or 1
    lines = ["     " + "".join(f"{h:<3d}" if h % 3 == 0 else "" for h in range(24))]
    for day, row in zip(WEEKDAYS, heatmap):
        lines.append(f"{day}  " + "".join(shades[0 if n == 0 else 1 + min(3, n * 4 // (top + 1))] for n in row)
                     + f"  {sum(row)}")
    return "\n".join(lines)


def to_html(report: PeriodReport) -> str:
    """One self-contained file: inline CSS and SVG, no script, nothing fetched."""
    f = report.figures
    esc = html.escape

    def table(headers: list[str], rows: list[list[Any]]) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    def bars(values: dict[str, int]) -> str:
        top = max(values.values(), default=0) or 1
        rows = "".join(f'<text x="0" y="{i * 22 + 15}">{esc(k)}</text>'
                       f'<rect x="220" y="{i * 22 + 3}" width="{v * 400 / top:.1f}" height="16" class="bar"/>'
                       f'<text x="{225 + v * 400 / top:.1f}" y="{i * 22 + 15}">{v}</text>'
                       for i, (k, v) in enumerate(list(values.items())[:12]))
        return f'<svg width="700" height="{22 * min(len(values), 12) + 6}" role="img">{rows}</svg>'

    top = max((n for row in report.heatmap for n in row), default=0) or 1
    cells = "".join(f'<rect x="{40 + h * 22}" y="{d * 22}" width="20" height="20" fill-opacity="{n / top:.2f}" '
                    f'class="cell"><title>{WEEKDAYS[d]} {h:02d}:00 · {n}</title></rect>'
                    for d, row in enumerate(report.heatmap) for h, n in enumerate(row))
    labels = "".join(f'<text x="0" y="{d * 22 + 15}">{day}</text>' for d, day in enumerate(WEEKDAYS))
    heat = f'<svg width="580" height="160" role="img">{labels}{cells}</svg>'
    kpi_rows = [[k.label, kpi_text(k), target_text(k)] for k in f.kpis]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Service report {esc(period_text(report))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }}
svg text {{ font-size: 12px; }}
.bar {{ fill: #3b6ea5; }} .cell {{ fill: #c0392b; }}
</style></head><body>
<h1>Service report: {esc(period_text(report))}</h1>
<h2>KPIs</h2>{table(["KPI", "value", "target"], kpi_rows)}
<h2>Backlog at the end of the period</h2>{bars(f.backlog)}
<h2>Arrivals by channel</h2>{bars(report.by_channel)}
<h2>Top categories</h2>{bars(report.by_category)}
<h2>Arrivals by weekday and hour</h2>{heat}
<h2>Escalations</h2>{bars(f.escalations_by_group)}{table(["reason", "times"], [list(r) for r in report.escalation_reasons])}
<h2>Operators</h2>{table(["operator", "taken", "resolved", "escalated", "first contact"],
                         [list(row.values()) for row in report.operators])}
</body></html>
"""


RENDER = {"md": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}
