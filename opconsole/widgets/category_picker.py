"""Type-to-filter category picker: a filter line over the taxonomy; up/down move, enter picks."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from opconsole.config import Category


def matches(category: Category, words: list[str]) -> bool:
    text = f"{category.id} {category.name}".lower()
    return all(word in text for word in words)


class CategoryPicker(Vertical):
    DEFAULT_CSS = """
    CategoryPicker { height: auto; width: 1fr; }
    CategoryPicker > Input { background: $boost; }
    CategoryPicker > OptionList { height: 5; }
    """

    class Picked(Message):
        def __init__(self, picker: CategoryPicker, category: str | None):
            super().__init__()
            self.picker = picker
            self.category = category

    def __init__(self, categories: list[Category], *, id: str | None = None):
        super().__init__(id=id)
        self.categories = categories
        self.value: str | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="type to filter: vpn, print, pos…", id="category-filter", compact=True)
        yield OptionList(id="category-options", compact=True)

    def on_mount(self) -> None:
        self.show([])

    def show(self, words: list[str]) -> None:
        options = self.query_one(OptionList)
        options.set_options(Option(f"{c.id}  {c.name}", id=c.id) for c in self.categories if matches(c, words))
        if options.option_count:
            options.highlighted = 0

    @on(Input.Changed, "#category-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.show(event.value.lower().split())

    def key_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def key_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    @on(Input.Submitted, "#category-filter")
    def pick_highlighted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None and options.option_count:
            self.pick(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    def pick_clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.pick(event.option.id)

    def pick(self, category: str | None) -> None:
        self.value = category
        chosen = next(c for c in self.categories if c.id == category)
        self.query_one(Input).value = f"{chosen.id}  {chosen.name}"
        self.post_message(self.Picked(self, category))
