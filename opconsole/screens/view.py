"""What the console's main views (the workbench, the lead view) share: the store watcher's changes
reach them through `refresh_data`, and their bindings fill the command palette."""

from __future__ import annotations

from textual.screen import Screen


class View(Screen[None]):
    def refresh_data(self) -> None:
        """Read again what the view shows: something was committed to the store."""
        raise NotImplementedError
