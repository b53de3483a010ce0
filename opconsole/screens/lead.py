"""The shift lead's view: the KPI tiles of the shift, the queues by group, the tickets breaching or
about to, the unassigned ones, the operators on shift, arrivals against last week and ticket football.

Thin like the workbench: a worker reads one board snapshot (opconsole.lead) after every change the
store watcher reports and every few seconds besides (the SLA clocks move without any change); the
panes are redrawn from it, and the clocks tick once a second without any I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from opconsole import queue
from opconsole.config import PRIORITIES
from opconsole.errors import OpconsoleError
from opconsole.queue import QueueFilter, QueueRow
from opconsole.screens.forms import ActionForm, Field, FormSpec
from opconsole.screens.view import View
from opconsole.widgets.board import KpiTiles, arrivals_text, football_text, groups_table, operators_table
from opconsole.widgets.footer import Footer
from opconsole.widgets.queue_table import QueueTable, header_text
from opconsole.widgets.text_pane import TextPane

if TYPE_CHECKING:
    from opconsole.lead import Board, Snapshot
    from opconsole.services import Desk

RECOUNT_SECONDS = 5.0  # the board is read again at least this often: breaches happen without a commit
NARROW_BELOW = (120, 36)  # columns, lines; below either, one pane shows at a time under the tiles
LISTS = ("overdue", "unassigned_longest")
# the panes in the order of their number keys, each in its row of the wide layout
PANES = (("overdue", "1 Breaching or due within 30 min", "lists"), ("unassigned_longest", "2 Unassigned, longest waiting",
         "lists"), ("groups", "3 Queues by group", "middle"), ("operators", "4 Operators on shift", "middle"),
         ("arrivals", "5 Arrivals per hour", "bottom"), ("football", "6 Football", "bottom"))


class LeadStatus(TextPane):
    pass


class LeadScreen(View):
    AUTO_FOCUS = "#overdue"
    BINDINGS = [
        Binding("a", "reassign", "Reassign", id="lead.reassign"),
        Binding("p", "raise_priority", "Raise priority", id="lead.raise_priority"),
        Binding("enter", "card", "Card", id="lead.card"),
        Binding("o", "open_ticket", "Open ticket…", id="lead.open_ticket"),
        *(Binding(str(n), f"pane({n - 1})", title[2:], show=False, id=f"lead.pane_{pane}")
          for n, (pane, title, _) in enumerate(PANES, start=1)),
        Binding("tab", "cycle(1)", "Next pane", show=False, id="lead.next_pane"),
        Binding("shift+tab", "cycle(-1)", "Previous pane", show=False, id="lead.previous_pane"),
        Binding("question_mark,f1", "app.show_help_panel", "Help", id="lead.help"),
        Binding("q", "app.quit", "Quit", id="lead.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: Snapshot | None = None
        self.board: Board | None = None  # made by the first worker (it imports the data layer)
        self.could_act = False  # whether the footer offers the ticket actions

    def compose(self) -> ComposeResult:
        yield KpiTiles(id="tiles")
        for row in ("middle", "lists", "bottom"):
            with Horizontal(id=f"lead-{row}", classes="board-row"):
                for pane, title, in_row in PANES:
                    if in_row == row:
                        with Vertical(id=f"{pane}-pane", classes="board-pane") as box:
                            box.border_title = title
                            yield from self.pane_body(pane)
        yield LeadStatus(id="lead-status")
        yield Footer()

    def pane_body(self, pane: str) -> ComposeResult:
        if pane in LISTS:
            yield Static(header_text(400, markable=True, age=pane == "unassigned_longest"), classes="list-header")
            yield self.ticket_list(pane)
        else:
            with VerticalScroll(id=f"{pane}-scroll"):
                yield TextPane("reading the desk…" if pane == "groups" else "", id=pane)

    def ticket_list(self, scope: str) -> QueueTable:
        app, flt = self.console, QueueFilter(scope)
        return QueueTable(
            fetch_page=lambda offset, limit: queue.page(app.reader(), flt, app.actor, app.clock(), offset, limit),
            locate=lambda key: queue.position_of(app.reader(), flt, app.actor, app.clock(), key),
            count=lambda: queue.count(app.reader(), flt, app.actor, app.clock()),
            clock=app.clock, calendar_of=lambda priority: app.config.sla[priority].calendar,
            markable=True, age=scope == "unassigned_longest", id=scope)

    def on_mount(self) -> None:
        self.query_one("#football-pane").border_title = \
            f"6 Football: moved between groups more than {self.console.config.targets.football_moves} times"
        self.show_pane(LISTS[0])
        self.refresh_data()
        self.set_interval(1.0, self.tick)

    def on_resize(self) -> None:
        columns, lines = NARROW_BELOW
        self.set_class(self.size.width < columns or self.size.height < lines, "narrow")

    def on_screen_resume(self) -> None:
        if self.snapshot is not None:  # back from another view or a form: what changed meanwhile shows
            self.refresh_data()

    # --- data -------------------------------------------------------------------------------

    def refresh_data(self) -> None:
        for scope in LISTS:
            table = self.part(f"#{scope}")
            if table is not None:
                table.reload()
        self.read_board()

    @work(thread=True, exclusive=True, group="board")
    def read_board(self) -> None:
        from opconsole.lead import Board

        if self.board is None:
            self.board = Board(self.console.config)
        snapshot = self.board.read(self.console.reader(), self.console.clock())
        self.app.call_from_thread(self.show_board, snapshot)

    def show_board(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        tiles = self.part("#tiles")
        if tiles is None:
            return
        names = {g.id: g.name for g in self.console.config.groups.values()}
        with self.app.batch_update():
            tiles.show(snapshot.figures)
            self.query_one("#groups", TextPane).show(groups_table(snapshot, names))
            self.query_one("#football", TextPane).show(
                football_text(snapshot.football, self.console.config.targets.football_moves, names))
            local = snapshot.now.astimezone(self.board.zone)
            self.query_one("#arrivals", TextPane).show(
                arrivals_text(snapshot.arrivals, local.hour, local.strftime("%a")))
            self.show_clocks()
        self.query_one("#overdue-pane").border_subtitle = f"{snapshot.breached} breached · {snapshot.due_soon} due soon"
        self.query_one("#unassigned_longest-pane").border_subtitle = f"{snapshot.unassigned} unassigned"

    def show_clocks(self) -> None:
        """What moves with the clock alone: operators' idle times and the status bar."""
        snapshot, now = self.snapshot, self.console.clock()
        if snapshot is None:
            return
        zone = self.board.zone
        local = now.astimezone(zone)
        self.query_one("#operators", TextPane).show(operators_table(snapshot.operators, now))
        self.query_one(LeadStatus).show(Text("  │  ".join([
            f"lead {self.console.actor}",
            f"shift since {snapshot.shift_start.astimezone(zone).strftime('%a %H:%M')}",
            f"breached {snapshot.breached} · due soon {snapshot.due_soon} · unassigned {snapshot.unassigned}",
            f"read {snapshot.now.astimezone(zone).strftime('%H:%M:%S')}",
            local.strftime("%H:%M:%S")])))

    def tick(self) -> None:
        """Once a second: the SLA time left and the idle times tick; every few seconds the board is read."""
        if self.part("#tiles") is None:
            return
        for scope in LISTS:
            self.query_one(f"#{scope}", QueueTable).refresh()
        self.show_clocks()
        if self.snapshot is not None and (self.console.clock() - self.snapshot.now).total_seconds() >= RECOUNT_SECONDS:
            self.refresh_data()

    # --- lists --------------------------------------------------------------------------------

    def focused_list(self) -> QueueTable | None:
        return self.focused if isinstance(self.focused, QueueTable) else None

    def chosen(self) -> list[QueueRow]:
        """The marked tickets of the focused list, else the one under its cursor."""
        table = self.focused_list()
        if table is None:
            return []
        if table.marked:
            return list(table.marked.values())
        return [table.current_row] if table.current_row else []

    def action_pane(self, index: int) -> None:
        """Focus pane `index`; in the narrow layout it is the one shown under the tiles."""
        pane = PANES[index][0]
        self.show_pane(pane)
        self.query_one(f"#{pane}" if pane in LISTS else f"#{pane}-scroll").focus()

    def show_pane(self, wanted: str) -> None:
        for pane, _, row in PANES:
            self.query_one(f"#{pane}-pane").set_class(pane == wanted, "active")
            if pane == wanted:
                for other in ("middle", "lists", "bottom"):
                    self.query_one(f"#lead-{other}").set_class(other == row, "active")

    def action_cycle(self, step: int) -> None:
        current = next(i for i, (pane, _, _) in enumerate(PANES) if self.query_one(f"#{pane}-pane").has_class("active"))
        self.action_pane((current + step) % len(PANES))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "card":
            table = self.focused_list()
            return True if table is not None and table.current_row is not None else None
        if action in ("reassign", "raise_priority"):
            return True if self.chosen() else None
        return True

    def on_descendant_focus(self, event: object) -> None:
        """The pane holding the focus is the active one (a click moves it as well as the number keys)."""
        self.highlighted()
        focused = self.focused
        for pane, _, _ in PANES:
            if focused is not None and self.query_one(f"#{pane}-pane") in focused.ancestors:
                self.show_pane(pane)

    @on(QueueTable.Highlighted)
    def highlighted(self) -> None:
        """The footer recomposes (~10 ms) only when the ticket actions come or go, not on every move."""
        can_act = bool(self.chosen())
        if can_act != self.could_act:
            self.could_act = can_act
            self.refresh_bindings()

    # --- lead actions ---------------------------------------------------------------------------

    def action_card(self) -> None:
        self.open_card(self.focused_list().current_row.key)

    def open_card(self, key: str) -> None:
        from opconsole.screens.card import CardScreen

        self.app.push_screen(CardScreen(key, self.console.load_card))

    def action_open_ticket(self) -> None:
        def found(key: str | None) -> None:
            if key:
                self.open_card(key)
        spec = FormSpec("Open a ticket's card", [Field("key", "Ticket key, e.g. MSK-42")])
        # an unknown key is refused inside the form, which keeps what was typed
        self.app.push_screen(ActionForm(spec, lambda values: self.console.desk().ticket(values["key"]).key), found)

    def action_reassign(self) -> None:
        self.open_reassign(self.chosen(), self.focused_list())

    @work(thread=True, group="lead-actions")
    def open_reassign(self, rows: list[QueueRow], table: QueueTable) -> None:
        loads = {o.login: o for o in self.snapshot.operators} if self.snapshot else {}
        operators = [(f"{o.login}  {o.name}" + (f" · {loads[o.login].in_progress} in work" if o.login in loads else ""),
                      o.login) for o in self.console.reader().operators() if o.active]
        groups = [(g.name, g.id) for g in self.console.config.groups.values()]
        spec = FormSpec(f"Reassign {describe(rows)} to an operator or a group (one of them)", [
            Field("to", "Operator", operators, required=False), Field("group", "Group", groups, required=False)])

        def save(values: dict[str, str]) -> str:
            return self.each(rows, table, "reassigned", lambda desk, row: desk.assign(
                row.key, to=values["to"] or None, group=values["group"] or None, expected_version=row.version))
        self.app.call_from_thread(self.app.push_screen, ActionForm(spec, save), self.done)

    def action_raise_priority(self) -> None:
        rows, table = self.chosen(), self.focused_list()
        lowest = max(PRIORITIES.index(row.priority) for row in rows)  # offered: anything above the lowest
        choices = [(p, p) for p in PRIORITIES[:max(lowest, 1)]]
        spec = FormSpec(f"Raise the priority of {describe(rows)}", [
            Field("priority", "New priority", choices, value=choices[0][1]),
            Field("reason", "Why (goes into the ticket's history)")])

        def save(values: dict[str, str]) -> str:
            return self.each(rows, table, f"raised to {values['priority']}", lambda desk, row: desk.raise_priority(
                row.key, values["priority"], values["reason"], expected_version=row.version))
        self.app.push_screen(ActionForm(spec, save), self.done)

    def each(self, rows: list[QueueRow], table: QueueTable, done: str, act: Callable[[Desk, QueueRow], object]) -> str:
        """Run `act` on every chosen ticket, each in its own transaction. All refused: the form stays open
        with the reasons; some refused: they stay marked and the confirmation names them."""
        desk = self.console.desk()
        refused: dict[str, str] = {}
        for row in rows:
            try:
                act(desk, row)
            except OpconsoleError as exc:
                refused[row.key] = str(exc)
        self.app.call_from_thread(table.unmark, {row.key for row in rows} - set(refused))
        reasons = "; ".join(f"{key}: {reason}" for key, reason in refused.items())
        if len(refused) == len(rows):
            raise OpconsoleError(reasons)
        if refused:
            self.app.call_from_thread(self.app.notify, reasons, title=f"{len(refused)} not {done}, still marked",
                                      severity="warning", timeout=15, markup=False)
            return f"{len(rows) - len(refused)} of {len(rows)} {done}"
        return f"{describe(rows)} {done}"

    def done(self, message: str | None) -> None:
        if message:
            self.app.notify(message, timeout=3, markup=False)


def describe(rows: list[QueueRow]) -> str:
    return rows[0].key if len(rows) == 1 else f"{len(rows)} tickets"
