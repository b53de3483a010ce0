"""Escalation: pick the group, and the form asks for exactly the fields that group needs for this
ticket's category, prefilled from what is already known. It cannot be sent incomplete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from opconsole.cards import TicketCard
from opconsole.screens.forms import SavingScreen

if TYPE_CHECKING:
    from opconsole.app import OpconsoleApp


def known_values(card: TicketCard) -> dict[str, str]:
    """What the ticket already holds for escalation fields: collected fields, then the caller's card."""
    values = dict(card.ticket.fields)
    contact = card.contact
    if contact is not None:
        values.setdefault("site", contact.site or "")
        values.setdefault("callback_phone", contact.phones[0] if contact.phones else "")
    return {k: v for k, v in values.items() if v}


class EscalateScreen(SavingScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="escalate.cancel"),
                Binding("ctrl+s", "save", "Escalate", id="escalate.save")]
    DEFAULT_CSS = """
    EscalateScreen { align: center middle; }
    EscalateScreen > VerticalScroll { width: 90; max-width: 100%; height: auto; max-height: 100%;
                                      border: thick $accent; background: $panel; padding: 0 1; }
    EscalateScreen .row { height: 1; margin-bottom: 1; }
    EscalateScreen .row > Label { width: 30; color: $text-muted; }
    EscalateScreen .row > Input, EscalateScreen .row > Select { width: 1fr; }
    EscalateScreen .row > Input { background: $boost; }
    EscalateScreen #required { height: auto; }
    EscalateScreen #error { color: $error; height: auto; }
    EscalateScreen .hint { color: $text-muted; }
    """

    def __init__(self, card: TicketCard, outcome: dict | None = None):
        """`outcome`: a call script's escalation (group, reason, fields) to start from."""
        super().__init__()
        self.card = card
        self.outcome = outcome or {}
        self.typed: dict[str, str] = {**known_values(card), **self.outcome.get("fields", {})}

    @property
    def console(self) -> OpconsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        config = self.console.config
        ticket = self.card.ticket
        groups = [(g.name, g.id) for g in config.groups.values() if g.id != config.first_line]
        suggested = self.outcome.get("group") or (config.categories[ticket.category].group if ticket.category else None)
        with VerticalScroll() as body:
            body.border_title = f"Escalate {ticket.key}: {ticket.subject}"
            with Horizontal(classes="row"):
                yield Label("Group")
                yield Select(groups, id="group", value=suggested or Select.NULL, compact=True)
            with Horizontal(classes="row"):
                yield Label("Reason")
                yield Input(self.outcome.get("reason", ""), id="reason", compact=True,
                            placeholder="what was tried, why it goes on")
            yield Vertical(id="required")
            yield Static("", id="error")
            yield Static("ctrl+s escalates · esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.show_required()
        self.query_one("#reason", Input).focus()

    @property
    def dirty(self) -> bool:
        return self.query_one("#reason", Input).value != self.outcome.get("reason", "")

    @on(Select.Changed, "#group")
    def group_changed(self) -> None:
        self.show_required()

    @on(Input.Changed)
    def remember(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("field-"):
            self.typed[event.input.id.removeprefix("field-")] = event.value

    @on(Input.Submitted)
    def next_field(self) -> None:
        self.focus_next()

    def show_required(self) -> None:
        """One input per field the chosen group requires; what was typed survives a change of group."""
        group = self.query_one("#group", Select).value
        box = self.query_one("#required", Vertical)
        box.remove_children()
        if group is Select.NULL:
            return
        config = self.console.config
        for name in config.required_fields(group, self.card.ticket.category):
            box.mount(Horizontal(Label(config.field_label(name)),
                                 Input(self.typed.get(name, ""), id=f"field-{name}", compact=True), classes="row"))

    def action_save(self) -> None:
        group = self.query_one("#group", Select).value
        if group is Select.NULL:
            self.query_one("#error", Static).update("choose the group to escalate to")
            return
        fields = {i.id.removeprefix("field-"): i.value for i in self.query("#required Input").results(Input)}
        reason = self.query_one("#reason", Input).value
        ticket = self.card.ticket

        def escalate() -> str:
            self.console.desk().escalate(ticket.key, str(group), reason, fields, expected_version=ticket.version)
            return f"{ticket.key} escalated to {group}"
        self.run_saving(escalate)

    def action_cancel(self) -> None:
        self.dismiss(None)
