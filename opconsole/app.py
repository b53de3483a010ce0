"""The console: the operator workbench on the local store.

All store access runs in worker threads, each with its own connection (PerThread). The workbench
paints first; a worker then creates or upgrades the store and checks the operator, and every other
worker waits for it (an unknown operator or a foreign file ends the console with exit 2). One
long-lived watcher thread polls `PRAGMA data_version` and tells the screen when anything was
committed, by this console or by any other process on the store.
"""

from __future__ import annotations

import gc
import random
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterable

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.binding import Binding
from textual.worker import get_current_worker

from opconsole.domain import Role, now_utc
from opconsole.errors import OpconsoleError, PermissionDenied
from opconsole.messages import StoreChanged
from opconsole.screens.view import View
from opconsole.screens.workbench import WorkbenchScreen

# The data layer (store, services, cards) is imported by the workers that use it, after the first paint.
if TYPE_CHECKING:
    from opconsole.cards import TicketCard
    from opconsole.config import Config
    from opconsole.scripts.library import Library
    from opconsole.scripts.runs import ScriptRuns
    from opconsole.services import Desk
    from opconsole.store import PerThread, Store
    from opconsole.sync.client import PusherLock, SyncLoop

WATCH_INTERVAL = 0.25  # seconds between data_version polls: other terminals' changes show within 1 s
DEMO_CALLS = (20.0, 60.0)  # seconds between the demo's new calls


LEAD_ROLES = (Role.LEAD, Role.ADMIN)


def lead_view() -> Screen:
    from opconsole.screens.lead import LeadScreen  # only leads open it: kept out of the console's start

    return LeadScreen()


VIEWS = {"workbench": WorkbenchScreen, "lead": lead_view}


class OpconsoleApp(App[None]):
    """The console. Its two views are screen modes, each with its own stack: the operator's workbench
    and, for leads and admins, the shift lead's view.

    The view it opens on starts as Textual's plain default screen, and becomes a mode only once it is
    up: opened as a mode, its first frame came about 90 ms later (bench_console: 293 against 205 ms)."""

    TITLE = "opconsole"
    CSS_PATH = "app.tcss"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.force_quit"),
                Binding("f2", "view('workbench')", "Workbench", id="app.workbench"),
                Binding("f3", "view('lead')", "Lead view", id="app.lead")]

    def __init__(self, store_path: Path, config: Config, actor: str, clock: Callable[[], datetime] = now_utc,
                 watch_interval: float = WATCH_INTERVAL, demo_calls: tuple[float, float] | None = None,
                 view: str = "workbench", role: Role = Role.OPERATOR):
        self.DEFAULT_MODE = view  # the view the first frame shows, through get_default_screen
        super().__init__()
        self.add_mode(*next((name, screen) for name, screen in VIEWS.items() if name != view))
        self.role = role  # the operator's role, read again when the store opens
        self.store_path = store_path
        self.config = config
        self.actor = actor
        self.clock = clock
        self.watch_interval = watch_interval
        self.demo_calls = demo_calls  # for the demo: seconds between new calls, (shortest, longest)
        self.stores: PerThread | None = None  # set by open_store
        self.store_opened = threading.Event()
        self.desks = threading.local()
        self.library: Library | None = None  # the call scripts, read by the first worker that needs them
        self.library_lock = threading.Lock()
        self.quit_asked = False
        self.sync_loop: SyncLoop | None = None  # set by start_sync when this terminal syncs the store
        self.pusher_lock: PusherLock | None = None
        if config.keymap:
            self.set_keymap(config.keymap)

    def reader(self) -> Store:
        """This thread's store connection, once the store is open (call from workers only)."""
        self.store_opened.wait()
        return self.stores.get()

    def desk(self) -> Desk:
        """This thread's desk, acting as the console's operator (call from workers only)."""
        desk = getattr(self.desks, "desk", None)
        if desk is None:
            from opconsole.services import Desk

            desk = self.desks.desk = Desk(self.reader(), self.config, self.actor, self.clock)
        return desk

    def script_runs(self) -> ScriptRuns:
        """Call-script runs on this thread's desk (call from workers only)."""
        from opconsole.scripts.runs import ScriptRuns

        return ScriptRuns(self.desk(), self.scripts())

    def scripts(self) -> Library:
        """The call-script library, read once; the scripts that fail the checker are left out and named."""
        with self.library_lock:
            if self.library is None:
                from opconsole.scripts.library import load_library

                from opconsole.kb.index import article_ids

                self.library = load_library(self.config, articles=article_ids(self.reader()) or None)
                if self.library.failed:
                    self.call_from_thread(self.notify, "\n".join(
                        str(problems[0]) for problems in list(self.library.failed.values())[:3]),
                        title=f"{len(self.library.failed)} call script(s) left out; `opconsole scripts check` "
                              "lists every problem", severity="warning", timeout=15, markup=False)
        return self.library

    def load_card(self, key: str) -> TicketCard:
        from opconsole.cards import load_card

        return load_card(self.reader(), key)

    def get_default_screen(self) -> Screen:
        return VIEWS[self.current_mode]()

    def on_mount(self) -> None:
        self.add_mode(self.current_mode, VIEWS[self.current_mode])  # up: now it can be switched back to
        self.call_after_refresh(self.start_collecting)
        self.open_store()
        self.watch_store()
        self.check_store()
        self.start_sync()
        if self.demo_calls:
            self.trickle_calls()

    @staticmethod
    def start_collecting() -> None:
        """After the first frame. Start-up objects live as long as the console: keep them out of every
        later full garbage collection, which otherwise walks them all and stalls key presses by tens
        of ms. Collection was held off during start-up (opconsole.__main__)."""
        gc.freeze()
        gc.enable()

    @work(thread=True, exclusive=True, group="store-open")
    def open_store(self) -> None:
        """Create or upgrade the store and check that the operator is known to it, then let the other
        workers in. A store or operator the console cannot use ends it, as the command line would."""
        import sqlite3

        from opconsole.services import Desk
        from opconsole.store import PerThread, Store, wal_reset_bug_affected

        self.stores = PerThread(self.store_path)
        try:
            with Store.open(self.store_path, site_prefix=self.config.site_prefix) as store:
                desk = Desk(store, self.config, self.actor)
                desk.ensure_first_operator()
                self.role = desk.operator().role
        except (OpconsoleError, sqlite3.DatabaseError) as exc:
            reason = exc if isinstance(exc, OpconsoleError) else f"the store cannot be used: {exc}"
            self.call_from_thread(self.refuse, str(reason))
            return
        finally:
            self.store_opened.set()
        self.call_from_thread(self.refresh_bindings)  # the views this role may switch to
        self.starter_kb()
        if wal_reset_bug_affected():
            self.call_from_thread(
                self.notify, f"SQLite {sqlite3.sqlite_version} predates 3.51.3 (WAL-reset bug): back the store "
                "up regularly with `opconsole backup`", severity="warning", timeout=10)

    def starter_kb(self) -> None:
        """A store without articles gets the bundled KB (a few hundred ms, after the store is open)."""
        from opconsole.kb.index import ensure_bundled

        imported = ensure_bundled(self.reader(), self.clock(), self.config.categories)
        if imported is None:
            return
        if imported.problems:
            self.call_from_thread(self.notify, "\n".join(map(str, imported.problems[:3])),
                                  title="KB articles skipped", severity="warning", markup=False)
        self.call_from_thread(self.kb_ready)

    def kb_ready(self) -> None:
        """The starter KB is in: the KB pane proposes articles for the selected ticket again."""
        from opconsole.widgets.kb_pane import KbPane

        for screen in self.screen_stack:
            if isinstance(screen, WorkbenchScreen):
                screen.query_one(KbPane).show_ticket(screen.selected.key if screen.selected else None)

    def refuse(self, reason: str) -> None:
        """End the console as the command line ends on bad input: exit 2 and one line on stderr. The
        workers waiting for the store are cancelled first, so their failures cannot add a traceback."""
        self.workers.cancel_all()
        self.exit(return_code=2, message=Text(f"opconsole: {reason}"))

    @work(thread=True, exclusive=True, group="store-watch")
    def watch_store(self) -> None:
        """Poll data_version on this thread's own long-lived connection; it changes on every commit
        made through any other connection."""
        worker = get_current_worker()
        store = self.reader()
        seen = store.data_version()
        while not worker.is_cancelled:
            time.sleep(self.watch_interval)
            current = store.data_version()
            if current != seen:
                seen = current
                self.post_message(StoreChanged())

    @work(thread=True, exclusive=True, group="sync")
    def start_sync(self) -> None:
        """Sync in the background with the server this store logged in to, if no other terminal on the
        store does already (that one's state shows here all the same, through the store)."""
        from opconsole.sync.client import OFFLINE, HttpTransport, PusherLock, SyncLoop, set_status
        from opconsole.sync.credentials import token_for

        url = self.reader().meta("server_url")
        if not url:
            return
        lock = PusherLock(self.store_path)
        if not lock.acquire():
            return
        try:
            token_for(url)
        except OpconsoleError as exc:
            lock.release()
            set_status(self.reader(), OFFLINE, str(exc))
            self.call_from_thread(self.notify, str(exc), title="Not syncing", severity="warning", timeout=20)
            return
        self.sync_loop = SyncLoop(self.store_path, lambda: HttpTransport(url, token_for(url)))
        self.pusher_lock = lock
        self.sync_loop.start()

    def on_unmount(self) -> None:
        if self.sync_loop is not None:
            self.sync_loop.close(timeout=0)
            self.pusher_lock.release()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "view":
            if parameters[0] == self.current_mode:
                return False
            return parameters[0] == "workbench" or self.role in LEAD_ROLES
        return True

    def action_view(self, view: str) -> None:
        self.switch_mode(view)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette (ctrl+p) offers every action of the view that applies to the selected ticket."""
        yield from super().get_system_commands(screen)
        if isinstance(screen, View):
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
        """The view on screen reads again; the other one does when it is shown (ScreenResume)."""
        for screen in self.screen_stack:
            if isinstance(screen, View):
                screen.refresh_data()

    @work(thread=True, exclusive=True, group="integrity")
    def check_store(self) -> None:
        """PRAGMA quick_check reads the whole file (1.6 s warm, 18 s cold at 1M tickets): never on the
        UI thread."""
        from opconsole.store import Store

        self.store_opened.wait()
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


def run_console(session: Any, *, demo: bool = False, view: str = "workbench") -> None:
    if demo and session.db is None:
        session.db = str(Path(tempfile.mkdtemp(prefix="opconsole-demo-")) / "demo.db")
    # An unknown operator or an unusable store is refused here, before the terminal is taken over (exit 2,
    # one line): refusing from inside a running app raced its shutdown. Costs ~7 ms of the cold start.
    desk = session.acting_desk()
    role = desk.operator().role
    if view == "lead" and role not in LEAD_ROLES:
        raise PermissionDenied(f"{session.actor} is an operator; the lead view is for shift leads and admins "
                               "(`opconsole operator add LOGIN --role lead`)")
    if demo and desk.store.count_tickets() == 0:
        from opconsole.demo import fill_demo_day

        fill_demo_day(desk)
    app = OpconsoleApp(desk.store.path, session.config, session.actor, demo_calls=DEMO_CALLS if demo else None,
                       view=view, role=role)
    app.run()
    if app.return_code:
        sys.exit(app.return_code)
