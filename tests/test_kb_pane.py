"""The KB lookup pane in the workbench (Pilot): suggestions for the selected ticket, search as you type
without blocking, stale searches dropped, opening an article, attach and rate reaching the store."""

from __future__ import annotations

import threading

from test_workbench import loaded, until
from textual.widgets import Input, OptionList

import opconsole.kb.index as kb_index
from opconsole.app import OpconsoleApp
from opconsole.services import Desk
from opconsole.store import Store
from opconsole.widgets.kb_pane import KbPane


def make_app(desk: Desk, clock) -> OpconsoleApp:
    return OpconsoleApp(desk.store.path, desk.config, desk.actor, clock, watch_interval=0.05)


def printer_ticket(desk: Desk) -> str:
    ticket = desk.register(phone="+79161234567", subject="Не печатает принтер, замятие бумаги",
                           category="printing.paper_jam")
    desk.take(ticket.key)
    return ticket.key


def result_ids(pane: KbPane) -> list[str]:
    return [hit.id for hit in pane.hits]


async def test_the_pane_proposes_articles_for_the_selected_ticket(desk: Desk, clock):
    printer_ticket(desk)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        pane = app.screen.query_one(KbPane)
        await until(pilot, lambda: bool(pane.hits))
        assert result_ids(pane)[0] == "kb-printer-paper-jam"
        assert "Suggested for MSK-000001" in str(pane.query_one("#kb-heading").render())


async def test_typing_is_never_blocked_by_a_search_and_stale_results_are_dropped(desk: Desk, clock, monkeypatch):
    printer_ticket(desk)
    release = threading.Event()
    searched: list[str] = []
    real_search = kb_index.search

    def slow_search(store, query, **kwargs):
        searched.append(query)
        if query == "сканер":
            release.wait(10)  # held until the operator has typed on
        return real_search(store, query, **kwargs)

    monkeypatch.setattr(kb_index, "search", slow_search)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        pane = app.screen.query_one(KbPane)
        await pilot.press("slash", *"сканер")
        await until(pilot, lambda: "сканер" in searched)  # that search is running, and held
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace", "backspace", *"printer")
        assert pane.query_one("#kb-query", Input).value == "printer"  # typed while the search was still running
        await until(pilot, lambda: pane.shown_query == "printer")
        release.set()
        await pilot.pause(0.3)
        assert pane.shown_query == "printer", "the older search's results must not replace the newer ones"
        assert "kb-add-network-printer" in result_ids(pane)


async def test_open_attach_and_rate_reach_the_store_and_the_search_is_logged(desk: Desk, clock):
    key = printer_ticket(desk)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        pane = app.screen.query_one(KbPane)
        await until(pilot, lambda: pane.ticket is not None)
        await pilot.press("slash", *"замятие", "enter")
        await until(pilot, lambda: pane.shown_query == "замятие" and pane.query_one(OptionList).has_focus)
        assert result_ids(pane)[0] == "kb-printer-paper-jam"
        await pilot.press("a", "plus")
        await pilot.press("enter")
        await until(pilot, lambda: pane.reading is not None)
        assert pane.reading.id == "kb-printer-paper-jam" and pane.has_class("reading")
        await pilot.press("minus")
        await pilot.press("escape")
        assert not pane.has_class("reading")
        await pilot.pause(0.3)
    with Store.open(desk.store.path) as store:
        ticket = store.ticket(key)
        kinds = [row[0] for row in store.conn.execute(
            "SELECT kind FROM kb_feedback WHERE ticket_id = ? ORDER BY id", (ticket.id,))]
        logged = store.conn.execute("SELECT query, results, opened, operator FROM kb_searches").fetchall()
        history = [e.op for e in store.events_for(ticket.id)]
    assert kinds == ["attached", "helped", "not_helped"]
    assert history.count("ticket.kb") == 3
    assert logged[0][0] == "замятие" and logged[0][2] == "kb-printer-paper-jam" and logged[0][3] == "op1"
