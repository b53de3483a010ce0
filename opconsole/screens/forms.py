"""Small modal forms for ticket actions. A form keeps what the operator typed until the action is
saved: a refusal (conflict, illegal transition, invalid value) is shown inside the form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from opconsole.config import LEVELS, Config
from opconsole.domain import Channel
from opconsole.errors import OpconsoleError

LEVEL_CHOICES = [(level, level) for level in LEVELS]
CHANNEL_CHOICES = [(c.value, c.value) for c in Channel]


def category_choices(config: Config) -> list[tuple[str, str]]:
    return [(f"{c.id}  {c.name}", c.id) for c in config.categories.values()]


class SavingScreen(ModalScreen[str | None]):
    """A modal form that saves through the desk in a worker: it closes with the confirmation on
    success, and on a refusal shows the reason in its #error line and keeps everything typed."""

    @work(thread=True, exclusive=True, group="form-save")
    def run_saving(self, save: Callable[[], str]) -> None:
        try:
            done = save()
        except OpconsoleError as exc:
            self.app.call_from_thread(self.query_one("#error", Static).update, str(exc))
            return
        self.app.call_from_thread(self.dismiss, done)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    choices: list[tuple[str, str]] | None = None  # (label, value); None: free text
    required: bool = True
    value: str = ""


@dataclass(frozen=True)
class FormSpec:
    title: str
    fields: list[Field] = field(default_factory=list)
    submit_label: str = "enter (in a text field) or ctrl+s saves · esc cancels"


class ActionForm(SavingScreen):
    """Asks for the fields of one action, runs `save(values)` in a worker, dismisses with its
    confirmation; on a refusal shows the reason and keeps every value."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="form.cancel"),
                Binding("ctrl+s", "submit", "Save", id="form.save")]
    DEFAULT_CSS = """
    ActionForm { align: center middle; }
    ActionForm > Vertical { width: 72; max-width: 100%; height: auto; border: thick $accent; padding: 1 2;
                            background: $panel; }
    ActionForm .form-title { text-style: bold; margin-bottom: 1; }
    ActionForm .form-error { color: $error; margin-top: 1; }
    ActionForm .form-hint { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, spec: FormSpec, save: Callable[[dict[str, str]], str]):
        super().__init__()
        self.spec = spec
        self.save = save

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.spec.title, classes="form-title")
            for f in self.spec.fields:
                yield Label(f.label)
                if f.choices is not None:
                    yield Select(f.choices, id=f"field-{f.name}", allow_blank=not f.value,
                                 value=f.value or Select.NULL)
                else:
                    yield Input(value=f.value, id=f"field-{f.name}")
            yield Static("", classes="form-error", id="error")
            yield Static(self.spec.submit_label, classes="form-hint")

    @property
    def dirty(self) -> bool:
        return any(str(v or "") != f.value for f, v in zip(self.spec.fields, self.values().values()))

    def values(self) -> dict[str, str]:
        values = {}
        for f in self.spec.fields:
            widget = self.query_one(f"#field-{f.name}")
            value = widget.value
            values[f.name] = "" if value is Select.NULL or value is None else str(value).strip()
        return values

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        values = self.values()
        missing = [f.label for f in self.spec.fields if f.required and not values[f.name]]
        if missing:
            self.query_one("#error", Static).update("fill in: " + ", ".join(missing))
            return
        self.run_saving(lambda: self.save(values))

    def action_cancel(self) -> None:
        self.dismiss(None)
