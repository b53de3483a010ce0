"""The console in backend mode: it syncs in the background, the status bar tells how that goes, the
operator is never blocked when the server is away, and a change the server did not take is shown."""

from __future__ import annotations

import pytest
from sync_support import backend_for, open_site
from test_workbench import loaded, make_app, until

from opconsole.screens.workbench import StatusBar
from opconsole.sync.client import HttpTransport, PusherLock

pytestmark = pytest.mark.slow


@pytest.fixture
def server(sqlite_server):
    return sqlite_server


@pytest.fixture
def token(server, config, monkeypatch):
    backend = backend_for(server.db_url, config)
    token = backend.create_token("op1", "lead")[1]
    backend.db.close()
    monkeypatch.setenv("OPCONSOLE_TOKEN", token)
    return token


def log_in(store, url: str) -> None:
    with store.write():
        store.set_meta("server_url", url)


def status_text(app) -> str:
    return str(app.screen_stack[0].query_one(StatusBar).render())  # the workbench, under any open form


async def test_a_local_store_says_so(desk, clock):
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: "(local)" in status_text(app))
        assert app.sync_loop is None


async def test_the_console_syncs_in_the_background_both_ways(server, token, desk, clock, config, tmp_path):
    log_in(desk.store, server.url)
    desk.register(subject="Printer offline at the front desk", category="printing.not_printing")
    other = open_site(tmp_path / "spb.db", "SPB", config, clock)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await until(pilot, lambda: "● online" in status_text(app) and "waiting" not in status_text(app))
        assert "synced" in status_text(app)
        other.syncer(HttpTransport(server.url, token)).once()
        assert other.store.count_tickets() == 1  # this console's ticket reached the server
        other.desk.register(subject="VPN drops every hour", category="vpn.drops")
        other.syncer(HttpTransport(server.url, token)).once()
        await until(pilot, lambda: app.screen.query_one("QueueTable").total == 2)  # no key pressed
    other.store.close()


async def test_offline_the_operator_works_on_and_sees_the_changes_wait(server, token, desk, clock):
    log_in(desk.store, server.url)
    server.stop()
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: "○ offline" in status_text(app))
        await pilot.press("n", *"89261234567")
        await until(pilot, lambda: "New caller" in str(app.screen.query_one("#caller").render()))
        await pilot.press("enter", *"Anna", "enter", *"Store 7", "enter", *"Scanner jams", "ctrl+s")
        await until(pilot, lambda: desk.store.count_tickets() == 1)  # saved at once, server or not
        await until(pilot, lambda: "2 waiting" in status_text(app))  # the caller and the ticket
        server.start()
        await until(pilot, lambda: "● online" in status_text(app) and "waiting" not in status_text(app), timeout=20)


async def test_a_change_the_server_did_not_take_is_shown(server, token, desk, clock, config, tmp_path):
    ticket = desk.register(subject="Printer offline at the front desk", category="printing.not_printing")
    other = open_site(tmp_path / "spb.db", "SPB", config, clock)
    transport = HttpTransport(server.url, token)
    desk.store.set_meta("server_url", server.url)
    from opconsole.sync.client import Syncer

    Syncer(desk.store, transport).once()
    other.syncer(transport).once()
    other.desk.classify(ticket.key, urgency="high")
    other.syncer(transport).once()
    desk.classify(ticket.key, urgency="low")
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: "1 not taken" in status_text(app))
        shown = [n.message for n in app._notifications]
        assert any("urgency stays 'high'" in text and ticket.key in text for text in shown), shown
        assert desk.store.ticket(ticket.key).urgency == "high"
    other.store.close()


async def test_a_second_terminal_on_the_store_leaves_sync_to_the_first(server, token, desk, clock):
    log_in(desk.store, server.url)
    desk.register(subject="Printer offline at the front desk", category="printing.not_printing")
    first = PusherLock(desk.store.path)
    assert first.acquire()
    try:
        app = make_app(desk, clock)
        async with app.run_test(size=(200, 50)) as pilot:
            await until(pilot, loaded(app))
            await pilot.pause(0.3)
            assert app.sync_loop is None
    finally:
        first.release()
