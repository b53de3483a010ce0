"""The console: the operator workbench on the local store.

All store access runs in worker threads, each with its own connection (PerThread). One long-lived
watcher thread polls `PRAGMA data_version` and tells the screen when anything was committed, by
this console or by any other process on the store.
"""

from __future__ import annotations

import gc
import random
import sqlite3
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from functools import partial
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.binding import Binding
from textual.worker import get_current_worker

from opconsole.cards import TicketCard, load_card
from opconsole.config import Config
from opconsole.domain import now_utc
from opconsole.errors import OpconsoleError
from opconsole.messages import StoreChanged
from opconsole.screens.workbench import WorkbenchScreen
from opconsole.services import Desk
from opconsole.store import PerThread, Store, wal_reset_bug_affected

WATCH_INTERVAL = 0.25  # seconds between data_version polls: other terminals' changes show within 1 s
DEMO_CALLS = (20.0, 60.0)  # seconds between the demo's new calls


class OpconsoleApp(App[None]):
    TITLE = "opconsole"
    CSS_PATH = "app.tcss"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.force_quit")]

    def __init__(self, store_path: Path, config: Config, actor: str, clock: Callable[[], datetime] = now_utc,
                 watch_interval: float = WATCH_INTERVAL, demo_calls: tuple[float, float] | None = None):
        super().__init__()
        self.store_path = store_path
        self.config = config
        self.actor = actor
        self.clock = clock
        self.watch_interval = watch_interval
        self.demo_calls = demo_calls  # for the demo: seconds between new calls, (shortest, longest)
        self.stores = PerThread(store_path)
        self.desks = threading.local()
        self.quit_asked = False
        if config.keymap:
            self.set_keymap(config.keymap)

    def reader(self) -> Store:
        """This thread's store connection (call from workers only)."""
        return self.stores.get()

    def desk(self) -> Desk:
        """This thread's desk, acting as the console's operator (call from workers only)."""
        desk = getattr(self.desks, "desk", None)
        if desk is None:
            desk = self.desks.desk = Desk(self.reader(), self.config, self.actor, self.clock)
        return desk

    def load_card(self, key: str) -> TicketCard:
        return load_card(self.reader(), key)

    def get_default_screen(self) -> Screen:
        return WorkbenchScreen()  # the first frame written is already the workbench

    def on_mount(self) -> None:
        # Start-up objects live as long as the console: keep them out of every later full garbage
        # collection, which otherwise walks them all and stalls key presses by tens of ms.
        self.call_after_refresh(gc.freeze)
        self.watch_store()
        self.check_store()
        if self.demo_calls:
            self.trickle_calls()
        if wal_reset_bug_affected():
            self.notify(f"SQLite {sqlite3.sqlite_version} predates 3.51.3 (WAL-reset bug): back the store up "
                        "regularly with `opconsole backup`", severity="warning", timeout=10)

    @work(thread=True, exclusive=True, group="store-watch")
    def watch_store(self) -> None:
        """Poll data_version on this thread's own long-lived connection; it changes on every commit
        made through any other connection."""
        worker = get_current_worker()
        store = Store.open(self.store_path, create=False)
        try:
            seen = store.data_version()
            while not worker.is_cancelled:
                time.sleep(self.watch_interval)
                current = store.data_version()
                if current != seen:
                    seen = current
                    self.post_message(StoreChanged())
        finally:
            store.close()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette (ctrl+p) offers every workbench action that applies to the selected ticket."""
        yield from super().get_system_commands(screen)
        if isinstance(screen, WorkbenchScreen):
            for binding in screen.BINDINGS:
                action = binding.action.removeprefix("app.")
                if binding.show and screen.check_action(action, ()):
                    yield SystemCommand(binding.description, f"{binding.key}  ({binding.id})",
                                        partial(screen.run_action, binding.action))

    @work(thread=True, exclusive=True, group="demo-calls")
    def trickle_calls(self) -> None:
        """The demo's stream of new calls, as if the phones kept ringing."""
        from opconsole.demo import incoming_call

        rng = random.Random()
        while sleep_unless_cancelled(rng.uniform(*self.demo_calls)):
            incoming_call(self.desk(), rng)

    def on_store_changed(self, message: StoreChanged) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, WorkbenchScreen):
                screen.refresh_data()

    @work(thread=True, exclusive=True, group="integrity")
    def check_store(self) -> None:
        """PRAGMA quick_check reads the whole file (1.6 s warm, 18 s cold at 1M tickets): never on the
        UI thread."""
        try:
            with Store.open(self.store_path, create=False, quick_check=True):
                pass
        except OpconsoleError as exc:
            self.call_from_thread(self.notify, str(exc), title="Store damaged", severity="error", timeout=60)

    async def action_quit(self) -> None:
        """Quit, unless a form holds unsaved input: then only a second press quits."""
        if getattr(self.screen, "dirty", False) and not self.quit_asked:
            self.quit_asked = True
            self.notify("This form has unsaved input: esc cancels it, ctrl+q again quits anyway.",
                        severity="warning")
            return
        self.exit()


def sleep_unless_cancelled(seconds: float) -> bool:
    """Sleep in short steps, so quitting never waits for a sleeping worker thread; False if the
    worker was cancelled meanwhile."""
    worker = get_current_worker()
    deadline = time.monotonic() + seconds
    while not worker.is_cancelled and time.monotonic() < deadline:
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    return not worker.is_cancelled


def run_console(session: Any, *, demo: bool = False) -> None:
    if demo and session.db is None:
        session.db = str(Path(tempfile.mkdtemp(prefix="opconsole-demo-")) / "demo.db")
    desk = session.acting_desk()
    if demo and desk.store.count_tickets() == 0:
        from opconsole.demo import fill_demo_day

        fill_demo_day(desk)
    OpconsoleApp(desk.store.path, session.config, session.actor, demo_calls=DEMO_CALLS if demo else None).run()
