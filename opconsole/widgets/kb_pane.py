"""The knowledge-base lookup pane: search as you type, results with the matching passage, the article.

Typing never waits for a search: each change restarts a short timer, the search runs in a worker,
and a newer search cancels the older one (its results are dropped). With nothing typed the pane
proposes the articles that best match the selected ticket. Enter opens an article, esc goes back;
`a` attaches the article to the selected ticket, `+` and `-` rate it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from opconsole.errors import OpconsoleError

if TYPE_CHECKING:
    from opconsole.app import OpconsoleApp
    from opconsole.kb.index import ArticleView, Hit

DEBOUNCE = 0.12  # seconds after the last keystroke before the search runs
RESULTS = 20


class KbPane(Vertical):
    BINDINGS = [
        Binding("escape", "back", "Back", id="kb.back"),
        Binding("down", "results", "Results", show=False, id="kb.results"),
        Binding("a", "feedback('attached')", "Attach", id="kb.attach"),
        Binding("plus", "feedback('helped')", "Helped", id="kb.helped"),
        Binding("minus", "feedback('not_helped')", "Did not help", id="kb.not_helped"),
    ]
    DEFAULT_CSS = """
    KbPane #kb-query { margin: 0 0 1 0; }
    KbPane #kb-heading { color: $text-muted; padding: 0 1; }
    KbPane #kb-results { height: 1fr; border: none; background: $surface; }
    KbPane #kb-article { height: 1fr; display: none; padding: 0 1; }
    KbPane.reading #kb-article { display: block; }
    KbPane.reading #kb-results, KbPane.reading #kb-heading { display: none; }
    KbPane #kb-meta { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.ticket: dict | None = None  # key, subject, description, category of the selected ticket
        self.hits: list[Hit] = []
        self.shown_query = ""
        self.reading: ArticleView | None = None
        self.pending_log: tuple[str, int] | None = None  # the last search shown, not yet logged
        self.search_timer: Timer | None = None
        self.wanted: str | None = None  # the selected ticket the pane follows
        self.parts_mounted = False  # the parts are mounted after the first frame

    @property
    def built(self) -> bool:
        """The parts are there: mounted after the first frame, and not yet removed as the console closes
        (a worker's late answer may come then)."""
        return self.parts_mounted and bool(self.children)

    @property
    def console(self) -> OpconsoleApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.call_after_refresh(self.build)  # after the console's first frame: ~15 ms it need not wait for

    async def build(self) -> None:
        if not self.is_attached:  # the console is closing (an unknown operator, say)
            return
        # the Markdown viewer joins on the first article (~25 ms of imports)
        await self.mount(Input(placeholder="search the KB: 3+ letters, Russian or English", id="kb-query"),
                         Static("", id="kb-heading"), OptionList(id="kb-results"),
                         VerticalScroll(Static("", id="kb-meta"), id="kb-article"))
        if not self.query("#kb-results"):
            return  # the console closed meanwhile: nothing was mounted
        self.parts_mounted = True
        self.show_hits(self.hits, self.shown_query, suggested=not self.shown_query)

    # --- the selected ticket ---------------------------------------------------------------------------

    def show_ticket(self, key: str | None) -> None:
        self.flush_log()
        self.ticket = None  # until this ticket is read: feedback waits, and never goes to the previous one
        self.wanted = key
        if key is None:
            if not self.built or not self.query_one("#kb-query", Input).value:
                self.show_hits([], "")
            return
        self.load_suggestions(key)

    @work(thread=True, exclusive=True, group="kb-suggest")
    def load_suggestions(self, key: str) -> None:
        from opconsole.kb.index import suggest

        store = self.console.reader()
        ticket = store.ticket(key)
        context = {"key": ticket.key, "id": ticket.id, "subject": ticket.subject,
                   "description": ticket.description, "category": ticket.category}
        hits = suggest(store, ticket.subject, ticket.description, ticket.category)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.ticket_loaded, context, hits)

    def ticket_loaded(self, context: dict, hits: list[Hit]) -> None:
        if context["key"] != self.wanted:
            return  # the selection moved on meanwhile
        self.ticket = context
        if not self.built or not self.query_one("#kb-query", Input).value.strip():
            self.show_hits(hits, "", suggested=True)

    # --- searching ---------------------------------------------------------------------------------------

    @on(Input.Changed, "#kb-query")
    def typed(self, event: Input.Changed) -> None:
        if self.search_timer is not None:
            self.search_timer.stop()
        self.search_timer = self.set_timer(DEBOUNCE, lambda: self.run_search(event.value))

    def run_search(self, query: str) -> None:
        from opconsole.kb.text import MIN_QUERY_CHARS, words

        if sum(len(w) for w in words(query)) < MIN_QUERY_CHARS:
            self.workers.cancel_group(self, "kb-search")
            if self.ticket and not query.strip():
                self.load_suggestions(self.ticket["key"])
            else:
                self.show_hits([], query)
            return
        self.search(query)

    @work(thread=True, exclusive=True, group="kb-search")
    def search(self, query: str) -> None:
        from opconsole.kb.index import search

        hits = search(self.console.reader(), query, limit=RESULTS)
        if not get_current_worker().is_cancelled:  # a newer query is on its way: its results win
            self.app.call_from_thread(lambda: self.show_hits(hits, query, searched=True))

    def show_hits(self, hits: list[Hit], query: str, suggested: bool = False, searched: bool = False) -> None:
        if query.strip() and self.pending_log and not query.startswith(self.pending_log[0].rstrip()):
            self.flush_log()  # a new search, not the same one typed further
        self.hits, self.shown_query = hits, query
        if searched:  # a search that ran (3+ letters) is logged once the operator is done with it
            self.pending_log = (query, len(hits))
        if not self.built:
            return  # shown by build()
        results = self.query_one("#kb-results", OptionList)
        results.clear_options()
        results.add_options([Option(hit_text(hit), id=hit.id) for hit in hits])
        results.highlighted = 0 if hits else None
        heading = self.query_one("#kb-heading", Static)
        if suggested and self.ticket:
            heading.update(f"Suggested for {self.ticket['key']}" if hits else
                           f"No article matches {self.ticket['key']} yet: type to search")
        elif query.strip():
            heading.update(f"{len(hits)} article(s)" if hits else "No article matches; try other words")
        else:
            heading.update("")

    @on(Input.Submitted, "#kb-query")
    def action_results(self) -> None:
        """From the search box to the results (enter or down)."""
        results = self.query_one("#kb-results", OptionList)
        if results.option_count:
            results.focus()
            if results.highlighted is None:
                results.highlighted = 0

    # --- reading -----------------------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#kb-results")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        article_id = event.option.id
        if self.pending_log:
            query, count = self.pending_log
            self.pending_log = None
            self.log(query, count, article_id)
        self.open_article(article_id, focus=True)

    @work(thread=True, exclusive=True, group="kb-open")
    def open_article(self, article_id: str, focus: bool = False) -> None:
        """Show an article; a call-script step asks for one without taking the focus from the script."""
        from opconsole.kb.index import article

        try:
            found = article(self.console.reader(), article_id)
        except OpconsoleError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="warning", markup=False)
            return
        self.app.call_from_thread(self.show_article, found, focus)

    async def show_article(self, found: ArticleView, focus: bool) -> None:
        from textual.widgets import Markdown

        if not self.built:
            return
        self.reading = found
        meta = " · ".join(part for part in (found.id, found.language, f"updated {found.updated}" if found.updated
                                            else "", found.owner or "") if part)
        self.query_one("#kb-meta", Static).update(Text(meta))
        viewer = self.query_one("#kb-article", VerticalScroll)
        if not viewer.query("#kb-body"):
            await viewer.mount(Markdown(id="kb-body"))
        await self.query_one("#kb-body", Markdown).update(f"# {found.title}\n\n{found.body}")
        self.set_class(True, "reading")
        viewer.scroll_home(animate=False)
        if focus:
            viewer.focus()

    async def action_back(self) -> None:
        if self.has_class("reading"):
            self.set_class(False, "reading")
            self.query_one("#kb-results", OptionList).focus()
        elif self.query_one("#kb-results", OptionList).has_focus:
            self.query_one("#kb-query", Input).focus()
        else:
            self.flush_log()
            await self.screen.run_action("pane(1)")

    # --- the learning loop -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.built:
            return None
        if action == "feedback":  # with a ticket selected the keys stay here, never reaching the workbench's
            return True if self.ticket else None
        return True

    def article_in_view(self) -> str | None:
        if self.has_class("reading") and self.reading:
            return self.reading.id
        highlighted = self.query_one("#kb-results", OptionList).highlighted_option
        return highlighted.id if highlighted else None

    def action_feedback(self, kind: str) -> None:
        article_id, ticket = self.article_in_view(), self.ticket
        if not article_id:
            self.app.notify("Highlight or open an article first.", timeout=3)
        elif ticket:
            self.send_feedback(ticket["key"], article_id, kind)

    @work(thread=True, group="kb-feedback")
    def send_feedback(self, key: str, article_id: str, kind: str) -> None:
        from opconsole.kb.index import FEEDBACK

        try:
            self.console.desk().kb_feedback(key, article_id, kind)
        except OpconsoleError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error", markup=False)
            return
        self.app.call_from_thread(self.app.notify, f"{article_id} {FEEDBACK[kind]} on {key}", timeout=3,
                                  markup=False)

    def flush_log(self) -> None:
        if self.pending_log:
            query, count = self.pending_log
            self.pending_log = None
            self.log(query, count, None)

    def log(self, query: str, results: int, opened: str | None) -> None:
        self.write_log(query, results, opened, self.ticket["id"] if self.ticket else None)

    @work(thread=True, group="kb-log")
    def write_log(self, query: str, results: int, opened: str | None, ticket_id: str | None) -> None:
        from opconsole.kb.index import log_search

        log_search(self.console.reader(), self.console.actor, query, results, opened, ticket_id, self.console.clock())


def hit_text(hit: Hit) -> Text:
    text = Text(hit.title, style="bold")
    text.append(f"  {hit.language}\n", style="dim")
    for piece, matched in hit.snippet:
        text.append(piece, style="reverse" if matched else "dim")
    return text
