"""The ticket card: every field, the SLA timers, the caller and the whole history, over the
workbench (esc returns to it)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from opconsole.cards import TicketCard, card_text


class CardScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "app.pop_screen", "Back", id="card.back")]
    DEFAULT_CSS = """
    CardScreen { align: center middle; }
    CardScreen > VerticalScroll { width: 90%; height: 90%; border: thick $accent; background: $panel; padding: 0 1; }
    """

    def __init__(self, key: str, load: "callable[[str], TicketCard]"):
        super().__init__()
        self.key = key
        self.load = load

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(f"loading {self.key}…", id="card-body")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).border_title = f"Ticket {self.key}"
        self.fetch()

    @work(thread=True, exclusive=True, group="card")
    def fetch(self) -> None:
        card = self.load(self.key)
        self.app.call_from_thread(self.query_one("#card-body", Static).update, card_text(card))
