"""Text that the console updates often (status bars, the lead view's panes)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class TextPane(Widget):
    """Text redrawn only when it changes, and laid out again only when its line count does. The console
    updates these every second or more often, and each update of a Static lays out the whole screen
    (about 20 ms with the lead view's panes, long enough to delay a key)."""

    DEFAULT_CSS = "TextPane { height: auto; text-wrap: nowrap; text-overflow: clip; }"

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.text = Text(text)

    def render(self) -> Text:
        return self.text

    def show(self, text: Text) -> None:
        if text == self.text:
            return
        relayout = text.plain.count("\n") != self.text.plain.count("\n")
        self.text = text
        self.refresh(layout=relayout)
