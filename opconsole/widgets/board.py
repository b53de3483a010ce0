"""The lead view's panes, drawn from one board snapshot (opconsole.lead.Snapshot): KPI tiles, the
queues by group, the operators on shift, arrivals against last week, and ticket football."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal

from opconsole.config import PRIORITIES
from opconsole.queue import duration_text
from opconsole.widgets.queue_table import STATUS_SHORT
from opconsole.widgets.text_pane import TextPane

if TYPE_CHECKING:  # the data layer loads after the first frame
    from opconsole import kpis
    from opconsole.lead import Arrivals, Football, OperatorLoad, Snapshot

TILES = ("sla_response", "sla_resolution", "average_delay", "taken_within", "fcr", "flr", "escalation_rate",
         "reopen_rate", "aht")
SHORT_LABELS = {"sla_response": "SLA respond", "sla_resolution": "SLA resolve", "average_delay": "Avg delay",
                "fcr": "FCR", "flr": "FLR", "escalation_rate": "Escalated", "reopen_rate": "Reopened", "aht": "AHT"}
SPARKS = " ▁▂▃▄▅▆▇█"


def value_text(kpi: kpis.Kpi) -> str:
    if kpi.value is None:
        return "n/a"
    return f"{kpi.value * 100:.1f} %" if kpi.unit == "%" else duration_text(kpi.value)


def target_line(kpi: kpis.Kpi) -> str:
    """What the value counts and its target, short enough for a tile 16 columns wide: "117/121 ≥80%"."""
    if kpi.value is None:
        return "nothing yet"
    counted = f"{kpi.numerator:g}/{kpi.denominator:g}" if kpi.unit == "%" else f"N={kpi.denominator:g}"
    if kpi.target is None:
        return counted
    sign = "≥" if kpi.higher_is_better else "≤"
    target = f"{kpi.target * 100:g}%" if kpi.unit == "%" else duration_text(kpi.target)
    return f"{counted} {sign}{target}"


class KpiTile(TextPane):
    """One KPI of the shift: its value, coloured by how it stands against its target."""

    def show_kpi(self, kpi: kpis.Kpi) -> None:
        label = SHORT_LABELS.get(kpi.key, kpi.label.replace("Taken within", "Taken ≤"))
        self.show(Text.assemble((label, "bold"), "\n", (value_text(kpi), "bold"), "\n", target_line(kpi)))
        for standing in ("met", "near", "missed", "none", "na"):
            self.set_class(kpi.standing == standing, f"-{standing}")


class BacklogTile(TextPane):
    def show_backlog(self, backlog: dict[str, int]) -> None:
        """All open tickets, and how many of them are older than a day (the full ages are in reports)."""
        total = sum(backlog.values())
        old = sum(n for label, n in backlog.items() if label in ("1-3 d", "3-7 d", "> 7 d"))
        self.show(Text.assemble(("Backlog", "bold"), "\n", (f"{total} open", "bold"), "\n", f"{old} over a day"))


class KpiTiles(Horizontal):
    def compose(self) -> ComposeResult:
        for key in TILES:
            yield KpiTile("…", id=f"tile-{key}", classes="tile")
        yield BacklogTile("…", id="tile-backlog", classes="tile")

    def show(self, figures: kpis.Report) -> None:
        for key in TILES:
            self.query_one(f"#tile-{key}", KpiTile).show_kpi(figures.kpi(key))
        self.query_one(BacklogTile).show_backlog(figures.backlog)


Cell = tuple[str, str]  # (text, style)


def table_text(columns: list[tuple[str, int]], rows: list[list[Cell]]) -> Text:
    """Rows in fixed-width columns (a negative width: right-aligned), as one Text. Cheap to lay out: a
    rich Table measures every cell on each update, ~14 ms for the operators of a large desk, every second."""
    def line(cells: list[Cell]) -> list[Cell]:
        out = []
        for (text, style), (_, width) in zip(cells, columns):
            text = text[:abs(width) - 1]
            out.append(((text.rjust(abs(width) - 1) if width < 0 else text.ljust(abs(width) - 1)) + " ", style))
        return out
    head = Text.assemble(*line([(name, "bold") for name, _ in columns]))
    return Text("\n").join([head] + [Text.assemble(*line(cells)) for cells in rows])


def count_cell(n: int, style: str = "") -> Cell:
    return str(n), style if n else "dim"


def groups_table(snapshot: Snapshot, names: dict[str, str]) -> Text:
    """The most pressing columns first (a narrow pane crops the priorities, not the breaches); then the
    backlog by age."""
    columns = [("GROUP", 24), ("OPEN", -6), ("BREACHED", -9), ("≤30m", -5), ("UNASSIGNED", -11),
               *((STATUS_SHORT[s], -10) for s in STATUS_SHORT), *((p, -5) for p in PRIORITIES)]
    rows = [[(names.get(g.group, g.group), ""), (str(g.open), "bold"), count_cell(g.breached, "bold red"),
             count_cell(g.due_soon, "yellow"), count_cell(g.unassigned, "yellow"),
             *(count_cell(g.by_status[s]) for s in STATUS_SHORT),
             *(count_cell(g.by_priority[p], "bold" if p == "P1" else "") for p in PRIORITIES)]
            for g in snapshot.groups]
    ages = " · ".join(f"{label} {n}" for label, n in snapshot.figures.backlog.items())
    return table_text(columns, rows) + Text.assemble("\n\n", ("Open by age  ", "bold"), ages)


def operators_table(operators: list[OperatorLoad], now: datetime) -> Text:
    rows = []
    for op in operators:
        if op.last_at is None:
            last, ago = ("none this shift", "dim"), ("", "")
        else:
            idle = (now - op.last_at).total_seconds()
            last = (f"{op.last_op.removeprefix('ticket.')} {op.last_key or ''}".strip(), "")
            ago = (duration_text(idle), "yellow" if idle > 30 * 60 else "")
        rows.append([(f"{op.login} {op.name}" if op.name != op.login else op.login, ""), count_cell(op.in_progress),
                     count_cell(op.assigned), last, ago])
    return table_text([("OPERATOR", 30), ("IN WORK", -8), ("OPEN", -6), ("LAST ACTION", 22), ("AGO", -8)], rows)


def sparkline(counts: list[int], top: int) -> str:
    return "".join(SPARKS[0 if not n else max(1, round(n / top * (len(SPARKS) - 1)))] for n in counts)


def arrivals_text(arrivals: Arrivals, now_hour: int, weekday: str) -> Text:
    top = max(arrivals.today + arrivals.last_week + [1])
    hours = "".join(f"{h:<6}" for h in range(0, 24, 6))
    so_far = sum(arrivals.last_week[:now_hour + 1])
    text = Text.assemble(
        ("today     ", "bold"), (sparkline(arrivals.today, top), "cyan"), f"  {sum(arrivals.today)}\n",
        (f"last {weekday:<5}", "bold"), (sparkline(arrivals.last_week, top), "magenta"),
        f"  {sum(arrivals.last_week)} ({so_far} by {(now_hour + 1) % 24:02d}:00)\n",
        ("          ", ""), (hours, "dim"), "\n")
    channels = " · ".join(f"{channel} {n}" for channel, n in arrivals.by_channel.items())
    return text + Text.assemble(("by channel ", "bold"), channels or "none yet")


def football_text(football: list[Football], moves: int, names: dict[str, str]) -> Text:
    if not football:
        return Text(f"no ticket of this shift moved between groups more than {moves} times", style="dim")
    lines = [f"{f.key}  {f.moves} moves, now {names.get(f.group, f.group)}" for f in football[:20]]
    more = [f"… and {len(football) - 20} more"] if len(football) > 20 else []
    return Text("\n".join(lines + more))
