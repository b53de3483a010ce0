"""The ticket queue: a virtualised list that pages rows from the store and draws only what shows.

DataTable measures every cell it holds (seconds for 10k rows), so the queue is a ScrollView with
render_line: it knows the row count, keeps a few pages of rows, loads missing pages in a worker
thread, and repaints only the lines the cursor touches. It stays the same at 1M tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from opconsole.queue import QueueRow, SlaState, duration_text
from opconsole.sla import Calendar

PAGE_SIZE = 100
MAX_PAGES = 12  # cached pages; the rest are dropped, farthest from the cursor first (never the ends)

STATUS_SHORT = {"new": "new", "in_progress": "in work", "waiting_on_caller": "waiting", "escalated": "escalated"}
COLUMNS = (("KEY", 13), ("PRI", 4), ("SLA", 9), ("STATUS", 10), ("CHANNEL", 10), ("OPERATOR", 13))


MARK = 2  # the mark column of a table that marks rows for an action on several
AGE = ("WAITED", 9)  # how long a ticket has been open, in tables that show it


def table_columns(age: bool = False) -> tuple[tuple[str, int], ...]:
    """The columns before SUBJECT; with `age`, how long each ticket has waited follows its SLA."""
    return COLUMNS[:3] + (AGE,) * age + COLUMNS[3:]


def header_text(width: int, markable: bool = False, age: bool = False) -> str:
    head = " " * MARK * markable + "".join(name.ljust(size) for name, size in table_columns(age)) + "SUBJECT"
    return head[:width]


@dataclass(frozen=True)
class Snapshot:
    """What a reload found: the row count and the pages around the cursor."""
    total: int
    pages: dict[int, list[QueueRow]]
    cursor_index: int | None  # where the previously selected ticket now is, if still queued
    moves: int  # the operator's cursor moves counted when the reload began


class QueueTable(ScrollView, can_focus=True):
    """Rows come from `fetch_page(offset, limit)` and `locate(key)`, both called in worker threads."""

    COMPONENT_CLASSES = {"queue-table--cursor", "queue-table--ok", "queue-table--at_risk",
                         "queue-table--breached", "queue-table--paused", "queue-table--loading",
                         "queue-table--marked"}
    DEFAULT_CSS = """
    QueueTable { background: $surface; }
    QueueTable > .queue-table--cursor { background: $accent 40%; }
    QueueTable:focus > .queue-table--cursor { background: $accent; color: $text; }
    QueueTable > .queue-table--ok { color: $success; }
    QueueTable > .queue-table--at_risk { color: $warning; text-style: bold; }
    QueueTable > .queue-table--breached { color: $error; text-style: bold; }
    QueueTable > .queue-table--paused { color: $text-muted; }
    QueueTable > .queue-table--loading { color: $text-disabled; }
    QueueTable > .queue-table--marked { color: $accent; text-style: bold; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="queue.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="queue.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="queue.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="queue.page_down"),
        Binding("home,g", "jump(0)", "First", show=False, id="queue.first"),
        Binding("end,G", "jump(-1)", "Last", show=False, id="queue.last"),
        Binding("space", "mark", "Mark", id="queue.mark"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Highlighted(Message):
        """The cursor rests on a ticket (None: the queue is empty). `by_operator`: moved by a key, not
        by a reload (the ticket under the cursor left the view, say)."""

        def __init__(self, row: QueueRow | None, by_operator: bool):
            super().__init__()
            self.row, self.by_operator = row, by_operator

    def __init__(self, fetch_page: Callable[[int, int], list[QueueRow]], locate: Callable[[str], int | None],
                 count: Callable[[], int], clock: Callable[[], datetime], calendar_of: Callable[[str], Calendar],
                 *, markable: bool = False, age: bool = False, id: str | None = None):
        super().__init__(id=id)
        self.markable = markable
        self.columns = table_columns(age)
        self.marked: dict[str, QueueRow] = {}  # key -> the row as it was when marked
        self.fetch_page, self.locate, self.count, self.clock = fetch_page, locate, count, clock
        self.calendar_of = calendar_of  # priority -> the SLA calendar its time counts in
        self.total = 0
        self.pages: dict[int, list[QueueRow]] = {}
        self.pages_pending: set[int] = set()  # not `loading`: that is Widget.loading, and a true one takes
        # the widget out of the key bindings (keys were lost while a page loaded)
        self.wanted: set[int] = set()  # pages asked for in this pass, loaded together
        self.generation = 0  # counts reloads, so pages read before one are dropped
        self.loaded_once = False
        self.pending_select: str | None = None  # a ticket to move to once the queue shows it
        self.moves = 0  # cursor moves by the operator: a reload read before the last one is stale
        self.moves_reported = 0
        self.last_by_operator = False

    # --- data -------------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        """Re-read the count and the pages in view; the cursor goes to ticket `select`, else stays on
        its ticket if it can."""
        if select:
            self.pending_select = select
        self._reload(self.pending_select or self.current_key, int(self.scroll_y), self.size.height or 1, self.moves)

    @work(thread=True, exclusive=True, group="queue-reload")
    def _reload(self, key: str | None, top: int, height: int, moves: int) -> None:
        total = self.count()
        index = self.locate(key) if key else None
        anchor = index if index is not None else min(self.cursor, max(total - 1, 0))
        last = max(total - 1, 0)  # the end is one key away: keep its page warm
        wanted = {p // PAGE_SIZE for p in (top, top + height, anchor, last)}
        pages = {p: self.fetch_page(p * PAGE_SIZE, PAGE_SIZE) for p in wanted if p * PAGE_SIZE < total}
        if not get_current_worker().is_cancelled:  # a newer reload has started: its view wins
            self.app.call_from_thread(self._apply, Snapshot(total, pages, index, moves))

    def _apply(self, snapshot: Snapshot) -> None:
        if snapshot.moves != self.moves:
            self.reload()  # the operator moved meanwhile: read again around the ticket now selected
            return
        self.total = snapshot.total
        self.pages = dict(snapshot.pages)
        self.pages_pending.clear()
        self.wanted.clear()
        self.generation += 1
        self.virtual_size = Size(self.size.width, self.total)
        target = snapshot.cursor_index if snapshot.cursor_index is not None else self.cursor
        self.pending_select = None
        self.loaded_once = True
        self.cursor = max(0, min(target, self.total - 1))
        self.refresh()

    def _request(self, page: int) -> None:
        """Ask for a page; the pages asked for in one pass load together, so they show in one frame."""
        if page not in self.pages and page not in self.pages_pending and page * PAGE_SIZE < self.total:
            self.pages_pending.add(page)
            if not self.wanted:
                self.call_later(self._load_wanted)
            self.wanted.add(page)

    def _load_wanted(self) -> None:
        pages, self.wanted = sorted(self.wanted), set()
        if pages:
            self._load_pages(pages, self.generation)

    @work(thread=True, group="queue-pages")
    def _load_pages(self, pages: list[int], generation: int) -> None:
        loaded = {page: self.fetch_page(page * PAGE_SIZE, PAGE_SIZE) for page in pages}
        self.app.call_from_thread(self._pages_loaded, loaded, generation)

    def _pages_loaded(self, loaded: dict[int, list[QueueRow]], generation: int) -> None:
        if generation != self.generation:
            return  # read before the last reload: the queue has changed since
        current = self.cursor // PAGE_SIZE
        for page, rows in loaded.items():
            self.pages_pending.discard(page)
            self.pages[page] = rows
            self.refresh_lines(page * PAGE_SIZE, PAGE_SIZE)
        pinned = set(loaded) | {0, (self.total - 1) // PAGE_SIZE}  # the ends are one key away
        while len(self.pages) > MAX_PAGES:
            del self.pages[max((p for p in self.pages if p not in pinned), key=lambda p: abs(p - current))]
        if current in loaded:
            self.post_message(self.Highlighted(self.row_at(self.cursor), self.last_by_operator))

    def row_at(self, index: int) -> QueueRow | None:
        rows = self.pages.get(index // PAGE_SIZE)
        if rows is None or index % PAGE_SIZE >= len(rows):
            return None
        return rows[index % PAGE_SIZE]

    @property
    def current_row(self) -> QueueRow | None:
        return self.row_at(self.cursor) if self.total else None

    @property
    def current_key(self) -> str | None:
        row = self.current_row
        return row.key if row else None

    # --- cursor -------------------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        height = max(self.scrollable_content_region.height, 1)
        if new < self.scroll_y:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= self.scroll_y + height:
            self.scroll_to(y=new - height + 1, animate=False, immediate=True)
        row = self.row_at(new)
        if self.total:
            # the page under the cursor, and those a page up or down will need: ready before the key
            for index in (new, new + height, new - height):
                if 0 <= index < self.total:
                    self._request(index // PAGE_SIZE)
        self.last_by_operator, self.moves_reported = self.moves != self.moves_reported, self.moves
        self.post_message(self.Highlighted(row, self.last_by_operator))

    def action_cursor(self, delta: int) -> None:
        if self.total:
            self.moves += 1
            self.cursor = max(0, min(self.cursor + delta, self.total - 1))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(self.scrollable_content_region.height - 1, 1))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.markable if action == "mark" else True

    def action_mark(self) -> None:
        """Mark the ticket under the cursor for the next action, or unmark it; the cursor moves on."""
        row = self.current_row
        if row is None:
            return
        if self.marked.pop(row.key, None) is None:
            self.marked[row.key] = row
        self.refresh_line(self.cursor)
        self.action_cursor(1)

    def unmark(self, keys: set[str] | None = None) -> None:
        for key in list(self.marked) if keys is None else keys:
            self.marked.pop(key, None)
        self.refresh()

    def action_jump(self, index: int) -> None:
        if self.total:
            self.moves += 1
            self.cursor = index if index >= 0 else self.total - 1

    # --- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.size.width
        if index >= self.total:
            if index == 0 and self.loaded_once:
                return Strip([Segment(" no tickets in this view".ljust(width), self.get_component_rich_style(
                    "queue-table--loading"))]).crop(0, width)
            return Strip.blank(width, self.rich_style)
        row = self.row_at(index)
        if row is None:
            self._request(index // PAGE_SIZE)
            return Strip([Segment(" …".ljust(width), self.get_component_rich_style("queue-table--loading"))])
        return self.render_row(row, width, cursor=index == self.cursor)

    def render_row(self, row: QueueRow, width: int, cursor: bool) -> Strip:
        now = self.clock()
        state = row.sla_state(now, self.calendar_of(row.priority))
        base = self.rich_style
        if cursor:
            base = base + self.get_component_rich_style("queue-table--cursor")
        sla_style = base + self.get_component_rich_style(f"queue-table--{state.value}", partial=True)
        sla = "paused" if state is SlaState.PAUSED else row.time_left(now)
        cells = [row.key, row.priority, sla, duration_text((now - row.created_at).total_seconds()),
                 STATUS_SHORT.get(row.status, row.status), row.channel, row.operator or "—"]
        if len(self.columns) == len(COLUMNS):
            del cells[3]
        segments = []
        if self.markable:
            marked = row.key in self.marked
            segments.append(Segment("✓ " if marked else "  ", base + self.get_component_rich_style(
                "queue-table--marked", partial=True) if marked else base))
        for (name, size), text in zip(self.columns, cells):
            style = sla_style if name == "SLA" else base
            if name == "PRI" and row.priority == "P1":
                style = base + Style(bold=True)
            segments.append(Segment(text[: size - 1].ljust(size), style))
        segments.append(Segment(row.subject, base))
        return Strip(segments).crop_extend(0, width, base)
