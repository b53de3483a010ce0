"""Registering an incoming call: the phone number first, then the caller's card, the problem, its
category and priority; the priority and SLA it will get are shown before it is saved.

enter moves to the next field, ctrl+s saves from anywhere; if the caller already has an open
ticket, ctrl+o adds this call to it as a note instead of opening a duplicate.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from opconsole import domain
from opconsole.errors import OpconsoleError
from opconsole.screens.forms import CHANNEL_CHOICES, LEVEL_CHOICES, SavingScreen
from opconsole.services import ContactCard
from opconsole.widgets.category_picker import CategoryPicker

if TYPE_CHECKING:
    from opconsole.app import OpconsoleApp



class RegisterScreen(SavingScreen):
    """Dismisses with the new ticket's key (or the key the call was added to), None if cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="register.cancel"),
        Binding("ctrl+s", "save", "Save", id="register.save"),
        Binding("ctrl+o", "add_to_open", "Add to open ticket", id="register.add_to_open"),
    ]
    DEFAULT_CSS = """
    RegisterScreen { align: center middle; }
    RegisterScreen > VerticalScroll { width: 96; max-width: 100%; height: auto; max-height: 100%;
                                      border: thick $accent; background: $panel; padding: 0 1;
                                      border-subtitle-color: $text; border-subtitle-style: bold; }
    RegisterScreen .row { height: 1; margin-bottom: 1; }
    RegisterScreen .row.category { height: auto; }
    RegisterScreen .row > Label { width: 14; color: $text-muted; }
    RegisterScreen .row > Input { width: 1fr; background: $boost; }
    RegisterScreen .row > Select { width: 1fr; }
    RegisterScreen #caller { background: $boost; padding: 0 1; margin-bottom: 1; height: auto; }
    RegisterScreen #new-caller { display: none; }
    RegisterScreen #new-caller.shown { display: block; }
    RegisterScreen #error { color: $error; height: auto; }
    RegisterScreen .hint { color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.card: ContactCard | None = None

    @property
    def console(self) -> OpconsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        config = self.console.config
        with VerticalScroll() as body:
            body.border_title = "New ticket"
            with Horizontal(classes="row"):
                yield Label("Phone")
                yield Input(id="phone", placeholder="8 912 345-67-89", compact=True)
            yield Static("Type the number; the caller's card appears here.", id="caller")
            with Horizontal(classes="row", id="new-caller"):
                yield Label("Name · site")
                yield Input(id="name", placeholder="new caller's name", compact=True)
                yield Input(id="site", placeholder="site or store number", compact=True)
            with Horizontal(classes="row"):
                yield Label("Subject")
                yield Input(id="subject", compact=True)
            with Horizontal(classes="row"):
                yield Label("Description")
                yield Input(id="description", compact=True)
            with Horizontal(classes="row category"):
                yield Label("Category")
                yield CategoryPicker(list(config.categories.values()), id="category")
            with Horizontal(classes="row"):
                yield Label("Impact · urg.")
                yield Select(LEVEL_CHOICES, id="impact", value=config.default_impact, allow_blank=False, compact=True)
                yield Select(LEVEL_CHOICES, id="urgency", value=config.default_urgency, allow_blank=False, compact=True)
                yield Select(CHANNEL_CHOICES, id="channel", value="phone", allow_blank=False, compact=True)
            yield Static("", id="error")
            yield Static("enter: next field · ctrl+s: save · esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#phone", Input).focus()
        self.show_preview()

    @property
    def dirty(self) -> bool:
        return any(self.query_one(f"#{name}", Input).value for name in ("phone", "subject", "description"))

    # --- the caller -----------------------------------------------------------------------------

    @on(Input.Changed, "#phone")
    def phone_changed(self, event: Input.Changed) -> None:
        self.look_up(event.value)

    @work(thread=True, exclusive=True, group="caller")
    def look_up(self, phone: str) -> None:
        try:
            card = self.console.desk().find_contact(phone) if len(phone.strip()) >= 5 else None
            known = True
        except OpconsoleError:
            card, known = None, False
        self.app.call_from_thread(self.show_caller, phone, card, known)

    def show_caller(self, phone: str, card: ContactCard | None, valid: bool) -> None:
        if phone != self.query_one("#phone", Input).value:
            return  # a newer lookup is on its way
        self.card = card
        caller = self.query_one("#caller", Static)
        self.query_one("#new-caller").set_class(card is None and valid, "shown")
        if card is None:
            caller.update("New caller: their card is created with the ticket." if valid else
                          "Type the number; the caller's card appears here.")
            return
        c = card.contact
        lines = [" · ".join(p for p in (c.name or "(no name)", c.organisation, c.site and f"site {c.site}") if p)]
        for ticket in card.open:
            lines.append(f"  open   {ticket.key}  {ticket.status.label:<18} {ticket.subject}")
        for ticket in card.recent[:3]:
            lines.append(f"  recent {ticket.key}  {ticket.status.label:<18} {ticket.subject}")
        if card.open:
            lines.append(f"ctrl+o adds this call to {card.open[0].key} instead of opening a new ticket")
        caller.update("\n".join(lines))

    # --- moving through the form ------------------------------------------------------------------

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        if event.input.id == "description":
            self.query_one("#category-filter", Input).focus()
        else:
            self.focus_next()

    @on(CategoryPicker.Picked)
    def category_picked(self) -> None:
        self.query_one("#impact", Select).focus()

    @on(Select.Changed)
    def levels_changed(self) -> None:
        self.show_preview()

    def show_preview(self) -> None:
        impact, urgency = self.query_one("#impact", Select).value, self.query_one("#urgency", Select).value
        now: datetime = self.console.clock()
        priority, response, resolution = domain.sla_preview(self.console.config, impact, urgency, now)
        when = lambda moment: moment.astimezone().strftime("%a %d.%m %H:%M")  # noqa: E731
        self.query_one(VerticalScroll).border_subtitle = (
            f"{priority} · respond by {when(response)} · resolve by {when(resolution)}")

    # --- saving -----------------------------------------------------------------------------------

    def action_save(self) -> None:
        values = {name: self.query_one(f"#{name}", Input).value.strip()
                  for name in ("phone", "name", "site", "subject", "description")}
        values["category"] = self.query_one(CategoryPicker).value
        for name in ("impact", "urgency", "channel"):
            values[name] = self.query_one(f"#{name}", Select).value
        self.run_saving(lambda: self.console.desk().register(
            phone=values["phone"], subject=values["subject"], description=values["description"],
            channel=values["channel"], category=values["category"], impact=values["impact"],
            urgency=values["urgency"], contact_name=values["name"], site=values["site"]).key)

    def action_add_to_open(self) -> None:
        if not (self.card and self.card.open):
            return
        key = self.card.open[0].key
        subject = self.query_one("#subject", Input).value.strip()
        note = f"Repeated call from {self.query_one('#phone', Input).value}" + (f": {subject}" if subject else "")

        def add_note() -> str:
            self.console.desk().note(key, note)
            return key
        self.run_saving(add_note)

    def action_cancel(self) -> None:
        self.dismiss(None)
