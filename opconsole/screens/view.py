"""What the console's main views (the workbench, the lead view) share: the store watcher's changes
reach them through `refresh_data`, and their bindings fill the command palette."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget

if TYPE_CHECKING:
    from opconsole.app import OpconsoleApp


class View(Screen[None]):
    @property
    def console(self) -> OpconsoleApp:
        return self.app  # type: ignore[return-value]

    def refresh_data(self) -> None:
        """Read again what the view shows: something was committed to the store."""
        raise NotImplementedError

    def part(self, selector: str | type[Widget]) -> Widget | None:
        """A part of the view, or None once the console is closing and its widgets are gone (a worker's
        late answer may arrive then)."""
        try:
            return self.query_one(selector)
        except NoMatches:
            return None
