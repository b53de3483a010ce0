"""The console. For now a placeholder workbench: the store, the operator and the open queue."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static

from opconsole.services import Desk
from opconsole.errors import OpconsoleError
from opconsole.store import Store, wal_reset_bug_affected


class OpconsoleApp(App[None]):
    TITLE = "opconsole"
    BINDINGS = [Binding("q", "quit", "Quit", id="quit")]

    def __init__(self, desk: Desk):
        super().__init__()
        self.desk = desk

    def on_mount(self) -> None:
        self.check_store()
        if wal_reset_bug_affected():
            self.notify(f"SQLite {sqlite3.sqlite_version} predates 3.51.3 (WAL-reset bug): back the store up "
                        "regularly with `opconsole backup`", severity="warning", timeout=10)

    @work(thread=True, exclusive=True, group="integrity")
    def check_store(self) -> None:
        """PRAGMA quick_check reads the whole file (1.6 s warm, 18 s cold at 1M tickets): never on the
        UI thread, and on a connection of this thread's own."""
        try:
            with Store.open(self.desk.store.path, create=False, quick_check=True):
                pass
        except OpconsoleError as exc:
            self.call_from_thread(self.notify, str(exc), title="Store damaged", severity="error", timeout=60)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.summary(), id="summary")
        yield Footer()

    def summary(self) -> str:
        store = self.desk.store
        queue = store.queue(limit=20)
        lines = [f"Store {store.path} · operator {self.desk.actor}",
                 f"{store.count_tickets()} tickets, {len(queue)} shown from the open queue", ""]
        lines += [f"{t.key}  {t.priority}  {t.status.label:<18} {t.subject[:70]}" for t in queue]
        lines += ["", "The operator workbench arrives with the console issue. Press q to quit."]
        return "\n".join(lines)


def run_console(session: Any, *, demo: bool = False) -> None:
    if demo and session.db is None:
        session.db = str(Path(tempfile.mkdtemp(prefix="opconsole-demo-")) / "demo.db")
    desk = session.acting_desk()
    if demo and desk.store.count_tickets() == 0:
        from opconsole.demo import fill_demo_day

        fill_demo_day(desk)
    OpconsoleApp(desk).run()
