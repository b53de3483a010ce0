"""The operator workbench: the queue, the call script and the knowledge base side by side.

Thin by design: it lays out panes, binds keys, asks for input with forms and calls the desk's
services in workers. It keeps no copy of the data: after any change the store watcher tells it,
and the queue and the counts are read again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from opconsole import queue
from opconsole.domain import OPEN_STATUSES, TRANSITIONS, Status, from_iso
from opconsole.errors import OpconsoleError
from opconsole.queue import QueueFilter, QueueRow
from opconsole.screens.forms import CHANNEL_CHOICES, LEVEL_CHOICES, ActionForm, Field, FormSpec, category_choices
from opconsole.screens.view import View
from opconsole.widgets.footer import Footer
from opconsole.widgets.text_pane import TextPane
from opconsole.widgets.queue_table import QueueTable, header_text
from opconsole.widgets.kb_pane import KbPane
from opconsole.widgets.script_player import ScriptPlayer

if TYPE_CHECKING:
    from opconsole.cards import TicketCard
    from opconsole.services import Desk
    from opconsole.store import Store
    from opconsole.sync.client import Status as SyncStatus

NARROW_BELOW = 120  # columns; below this one pane shows at a time
SETTLE = 0.15  # seconds the cursor rests before the footer, the script and the KB panes follow it
PANES = ("queue-pane", "script-pane", "kb-pane")
# actions that move a ticket's status, by the status machine's own names
STATUS_ACTIONS = {"take", "wait", "resolve", "reopen", "escalate"}
TICKET_ACTIONS = STATUS_ACTIONS | {"classify", "assign", "note", "card", "script"}


class StatusBar(TextPane):
    pass


class WorkbenchScreen(View):
    BINDINGS = [
        Binding("n", "register", "New", id="ticket.new"),
        Binding("t", "take", "Take", id="ticket.take"),
        Binding("c", "classify", "Classify", id="ticket.classify"),
        Binding("a", "assign", "Assign", id="ticket.assign"),
        Binding("e", "escalate", "Escalate", id="ticket.escalate"),
        Binding("m", "note", "Note", id="ticket.note"),
        Binding("w", "wait", "Wait", id="ticket.wait"),
        Binding("r", "resolve", "Resolve", id="ticket.resolve"),
        Binding("o", "reopen", "Reopen", id="ticket.reopen"),
        Binding("f", "filter", "Filter", id="queue.filter"),
        Binding("enter", "card", "Card", id="ticket.card"),
        Binding("s", "script", "Script", id="script.start"),
        Binding("slash", "pane(3)", "KB", id="kb.search"),
        Binding("1", "pane(1)", "Queue", show=False, id="pane.queue"),
        Binding("2", "pane(2)", "Script pane", show=False, id="pane.script"),
        Binding("3", "pane(3)", "KB pane", show=False, id="pane.kb"),
        Binding("tab", "cycle(1)", "Next pane", show=False, id="pane.next"),
        Binding("shift+tab", "cycle(-1)", "Previous pane", show=False, id="pane.previous"),
        Binding("question_mark,f1", "app.show_help_panel", "Help", id="app.help"),
        Binding("q", "app.quit", "Quit", id="app.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = QueueFilter()
        self.selected: QueueRow | None = None
        self.counts: queue.Counts | None = None
        self.sync: SyncStatus | None = None
        self.footer_timer: Timer | None = None
        self.follow_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        app = self.console
        with Horizontal(id="panes"):
            with Vertical(id="queue-pane", classes="pane active") as pane:
                pane.border_title = "1 Queue"
                yield Static(header_text(400), id="queue-header")
                yield QueueTable(
                    fetch_page=lambda offset, limit: queue.page(app.reader(), self.filter, app.actor, app.clock(),
                                                                offset, limit),
                    locate=lambda key: queue.position_of(app.reader(), self.filter, app.actor, app.clock(), key),
                    count=lambda: queue.count(app.reader(), self.filter, app.actor, app.clock()),
                    clock=app.clock, calendar_of=lambda priority: app.config.sla[priority].calendar, id="queue")
            with Vertical(id="script-pane", classes="pane") as pane:
                pane.border_title = "2 Script"
                yield ScriptPlayer(app.script_runs, id="script")
            with Vertical(id="kb-pane", classes="pane") as pane:
                pane.border_title = "3 Knowledge base"
                yield KbPane(id="kb")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.update_queue_title()
        self.query_one(QueueTable).focus()
        self.refresh_data()
        self.set_interval(1.0, self.tick)

    def on_screen_resume(self) -> None:
        if self.counts is not None:  # back from the lead view or a form: what changed meanwhile shows
            self.refresh_data()

    # --- data -------------------------------------------------------------------------------

    def refresh_data(self) -> None:
        table = self.part(QueueTable)
        if table is not None:
            table.reload()
            self.load_counts()

    @work(thread=True, exclusive=True, group="counts")
    def load_counts(self) -> None:
        from opconsole.sync.client import status

        store = self.console.reader()
        counts = queue.counts(store, self.console.actor, self.console.clock())
        sync = status(store)
        lost = store_lost(store, sync.lost - self.sync.lost) if self.sync and sync.lost > self.sync.lost else []
        self.app.call_from_thread(self.show_status, counts, sync, lost)

    def show_status(self, counts: queue.Counts | None = None, sync: SyncStatus | None = None,
                    lost: list[str] | None = None) -> None:
        self.counts = counts or self.counts
        self.sync = sync or self.sync
        now: datetime = self.console.clock()
        parts = [f"operator {self.console.actor}", sync_text(self.sync, self.console.store_path)]
        if self.counts:
            c = self.counts
            parts.append(f"new {c.new} · mine {c.mine} · breaching {c.breaching}")
        parts.append(now.astimezone().strftime("%H:%M:%S"))
        bar = self.part(StatusBar)
        if bar is None:
            return
        bar.show(Text("  │  ".join(parts)))
        for text in lost or []:
            self.notify(text, title="The server did not take a change", severity="warning", timeout=20, markup=False)

    def tick(self) -> None:
        """Once a second: the clock and the SLA time left (repaint only, no I/O)."""
        self.show_status()
        table = self.part(QueueTable)
        if table is not None:
            table.refresh()

    def update_queue_title(self) -> None:
        total = self.query_one(QueueTable).total
        self.query_one("#queue-pane").border_subtitle = f"{self.filter.describe()} · {total}"

    @on(QueueTable.Highlighted)
    def highlighted(self, event: QueueTable.Highlighted) -> None:
        previous = self.selected
        before = previous.status if previous else None
        self.selected = event.row
        self.update_queue_title()
        key = event.row.key if event.row else None
        # The panes follow once the cursor rests; a reload that moves it (the ticket being worked left this
        # view) does not take them away from a script in progress.
        if key != (previous.key if previous else None) and (event.by_operator or not self.query_one(
                ScriptPlayer).running):
            if self.follow_timer is not None:
                self.follow_timer.stop()
            self.follow_timer = self.set_timer(SETTLE, lambda: self.follow_ticket(key))
        if (event.row.status if event.row else None) != before:
            # The footer recomposes on this (~10 ms): once the cursor rests, not on every row it passes.
            if self.footer_timer is not None:
                self.footer_timer.stop()
            self.footer_timer = self.set_timer(SETTLE, self.refresh_bindings)

    def follow_ticket(self, key: str | None) -> None:
        """The script and KB panes follow the selected ticket once the cursor rests."""
        self.query_one(ScriptPlayer).show_ticket(key)
        self.query_one(KbPane).show_ticket(key)

    # --- layout -------------------------------------------------------------------------------

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW_BELOW, "narrow")

    def on_descendant_focus(self, event: object) -> None:
        focused = self.focused
        for pane_id in PANES:
            pane = self.query_one(f"#{pane_id}")
            pane.set_class(focused is not None and (focused is pane or pane in focused.ancestors), "active")

    def pane_target(self, number: int) -> Widget:
        found = self.query(("#queue", "#script", "#kb-query")[number - 1])
        return found.first() if found else self.query_one(f"#{PANES[number - 1]}")  # the KB's parts come later

    def action_pane(self, number: int) -> None:
        target = self.pane_target(number)
        for pane_id in PANES:  # in the narrow layout the pane must show before it can take focus
            self.query_one(f"#{pane_id}").set_class(pane_id == PANES[number - 1], "active")
        target.focus()

    def action_cycle(self, step: int) -> None:
        current = next((i for i, p in enumerate(PANES) if self.query_one(f"#{p}").has_class("active")), 0)
        self.action_pane((current + step) % len(PANES) + 1)

    # --- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        row = self.selected
        if action in TICKET_ACTIONS and row is None:
            return None
        if action in STATUS_ACTIONS:
            return True if action in TRANSITIONS[Status(row.status)].values() else None
        return True

    @work(thread=True, group="actions")
    def desk_action(self, run: Callable[[Desk], object], done: str) -> None:
        try:
            run(self.console.desk())
        except OpconsoleError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error", timeout=8)
            return
        self.app.call_from_thread(self.app.notify, done, timeout=3)

    def form(self, spec: FormSpec, save: Callable[[dict[str, str]], object],
             done: str | Callable[[object], str]) -> None:
        """Ask for `spec`, then `save(values)` in a worker; the form stays open until it succeeds."""
        def run(values: dict[str, str]) -> str:
            result = save(values)
            return done(result) if callable(done) else done

        self.app.push_screen(ActionForm(spec, run), self.confirmed)

    def action_take(self) -> None:
        row = self.selected
        self.desk_action(lambda desk: desk.take(row.key, expected_version=row.version), f"{row.key} is yours")

    def action_note(self) -> None:
        row = self.selected
        self.form(FormSpec(f"Note on {row.key}", [Field("text", "Note")]),
                  lambda v: self.console.desk().note(row.key, v["text"]), f"note added to {row.key}")

    def action_wait(self) -> None:
        row = self.selected
        self.form(FormSpec(f"{row.key}: wait on the caller (the SLA clock pauses)",
                           [Field("reason", "What the caller has to do or send", required=False)]),
                  lambda v: self.console.desk().wait(row.key, v["reason"] or None, expected_version=row.version),
                  f"{row.key} waits on the caller")

    def action_resolve(self, code: str = "", note: str = "", key: str | None = None) -> None:
        """The resolve form; a call script's outcome prefills the code and the note."""
        # from the queue, the save checks the ticket is unchanged since the row was read
        version = self.selected.version if key is None else None
        key = key or self.selected.key
        codes = [(label, code) for code, label in self.console.config.resolution_codes.items()]
        spec = FormSpec(f"Resolve {key}", [Field("code", "Resolution", codes, value=code),
                                           Field("note", "What was done", value=note)])
        self.form(spec, lambda v: self.console.desk().resolve(key, v["code"], v["note"], expected_version=version),
                  f"{key} resolved")

    def action_reopen(self) -> None:
        row = self.selected
        self.form(FormSpec(f"Reopen {row.key}", [Field("reason", "Why it is reopened")]),
                  lambda v: self.console.desk().reopen(row.key, v["reason"], expected_version=row.version),
                  f"{row.key} reopened")

    def action_classify(self) -> None:
        self.open_with_card(self.selected.key, self.classify_form)

    def classify_form(self, card: TicketCard) -> ActionForm:
        """Prefilled with what the ticket has now, so reclassifying one field keeps the others."""
        ticket = card.ticket
        spec = FormSpec(f"Classify {ticket.key}", [
            Field("category", "Category (type to search)", category_choices(self.console.config),
                  value=ticket.category or ""),
            Field("impact", "Impact", LEVEL_CHOICES, value=ticket.impact),
            Field("urgency", "Urgency", LEVEL_CHOICES, value=ticket.urgency)])

        def save(values: dict[str, str]) -> str:
            changed = self.console.desk().classify(ticket.key, category=values["category"], impact=values["impact"],
                                                   urgency=values["urgency"], expected_version=ticket.version)
            return f"{changed.key} classified: {changed.priority}"
        return ActionForm(spec, save)

    def action_escalate(self, key: str | None = None, outcome: dict | None = None) -> None:
        """The escalation form; a call script's outcome prefills the group, the reason and the fields."""
        from opconsole.screens.escalate import EscalateScreen

        self.open_with_card(key or self.selected.key, lambda card: EscalateScreen(card, outcome))

    # --- call scripts -------------------------------------------------------------------------

    def action_script(self) -> None:
        """Resume the selected ticket's call script, or start the best one suggested for it."""
        player = self.query_one(ScriptPlayer)
        if player.shown is None or player.shown.key != self.selected.key:
            player.start_when_loaded = self.selected.key  # the cursor has not rested yet: load, then start
            player.show_ticket(self.selected.key)
        elif not player.start_best():
            self.app.notify("No call script matches this ticket; classify it, or see `opconsole scripts list`.",
                            timeout=5)
        self.action_pane(2)

    @on(ScriptPlayer.Outcome)
    def script_outcome(self, event: ScriptPlayer.Outcome) -> None:
        outcome = event.outcome
        if outcome["kind"] == "resolve":
            self.action_resolve(outcome["code"], outcome["note"], key=event.key)
        elif outcome["kind"] == "escalate":
            self.action_escalate(event.key, outcome)
        else:
            player = self.query_one(ScriptPlayer)
            player.start(outcome["script"], carried=player.state.values())

    @on(ScriptPlayer.ArticleShown)
    def script_article(self, event: ScriptPlayer.ArticleShown) -> None:
        self.query_one(KbPane).open_article(event.article)

    @work(thread=True, group="actions")
    def open_with_card(self, key: str, screen: Callable[[TicketCard], Screen]) -> None:
        """Read the ticket fresh, then open a screen on it."""
        try:
            card = self.console.load_card(key)
        except OpconsoleError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(lambda: self.app.push_screen(screen(card), self.confirmed))  # built on the UI thread

    def confirmed(self, message: str | None) -> None:
        if message:
            self.app.notify(message, timeout=3)

    def action_assign(self) -> None:
        self.open_assign(self.selected)

    @work(thread=True, group="actions")
    def open_assign(self, row: QueueRow) -> None:
        operators = [(f"{o.login}  {o.name}", o.login) for o in self.console.reader().operators() if o.active]
        groups = [(g.name, g.id) for g in self.console.config.groups.values()]
        spec = FormSpec(f"Assign {row.key} to an operator or a group (one of them)", [
            Field("to", "Operator", operators, required=False), Field("group", "Group", groups, required=False)])
        self.app.call_from_thread(
            self.form, spec,
            lambda v: self.console.desk().assign(row.key, to=v["to"] or None, group=v["group"] or None,
                                                 expected_version=row.version),
            lambda ticket: f"{ticket.key}: {ticket.group_id}, {ticket.operator or 'no operator'}")

    def action_register(self) -> None:
        from opconsole.screens.register import RegisterScreen

        def registered(key: str | None) -> None:
            if key:
                self.app.notify(f"{key} saved", timeout=3)
                self.query_one(QueueTable).reload(select=key)
        self.app.push_screen(RegisterScreen(), registered)

    def action_filter(self) -> None:
        config = self.console.config
        spec = FormSpec("Filter the queue", [
            Field("scope", "Show", [(s, s) for s in queue.SCOPES], value=self.filter.scope),
            Field("channel", "Channel", CHANNEL_CHOICES, required=False, value=self.filter.channel or ""),
            Field("status", "Status", [(s.label, s.value) for s in OPEN_STATUSES],
                  required=False, value=self.filter.status or ""),
            Field("group", "Group", [(g.name, g.id) for g in config.groups.values()], required=False,
                  value=self.filter.group or ""),
        ])

        self.form(spec, lambda v: self.app.call_from_thread(self.set_filter, QueueFilter(
            v["scope"], v["channel"] or None, v["status"] or None, v["group"] or None)), "queue filtered")

    def set_filter(self, flt: QueueFilter) -> None:
        self.filter = flt
        self.update_queue_title()
        self.query_one(QueueTable).reload()

    def action_card(self) -> None:
        from opconsole.screens.card import CardScreen

        if self.selected is not None:
            self.app.push_screen(CardScreen(self.selected.key, self.console.load_card))


def sync_text(sync: SyncStatus | None, store_path: object) -> str:
    """The status bar's sync part: online or offline, changes waiting, the last sync, lost changes."""
    if sync is None or sync.server is None:
        return f"store {store_path} (local)"
    parts = ["● online" if sync.state == "online" else "○ offline" if sync.state == "offline" else "◌ connecting"]
    if sync.waiting:
        parts.append(f"{sync.waiting} waiting")
    if sync.last_at:
        parts.append("synced " + from_iso(sync.last_at).astimezone().strftime("%H:%M:%S"))
    if sync.lost:
        parts.append(f"⚠ {sync.lost} not taken")
    return " · ".join(parts)


def store_lost(store: Store, count: int) -> list[str]:
    """Notifications for the latest changes the server took only in part or not at all."""
    from opconsole.cards import lost_text
    from opconsole.sync.replica import Replica

    return [f"{key} {event.op.removeprefix('ticket.')}: {lost_text(event)}" for key, event in Replica(store).lost(min(count, 3))]
