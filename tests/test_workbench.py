"""The operator workbench through Pilot: layout, focus, the actions, live updates; checked on the store."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest
from textual import work
from textual.app import App
from textual.widgets import Input, Select

from opconsole.app import OpconsoleApp, sleep_unless_cancelled
from opconsole.screens.card import CardScreen
from opconsole.screens.escalate import EscalateScreen
from opconsole.screens.forms import ActionForm
from opconsole.services import Desk
from opconsole.store import Store
from opconsole.widgets.kb_pane import KbPane
from opconsole.widgets.queue_table import QueueTable
from opconsole.widgets.script_player import ScriptPlayer


@pytest.fixture
def stocked(desk: Desk, clock) -> Desk:
    """Three open tickets: a P1 outage, a new password request, and one already in work."""
    desk.register(phone="+79123456789", subject="Нет интернета в магазине 45", category="network.site_down",
                  impact="high", urgency="high")
    desk.register(phone="+79161234567", subject="Забыл пароль от учётной записи", category="accounts")
    desk.register(phone="+79031112233", subject="Не печатает принтер", category="printing", impact="low",
                  urgency="low")
    desk.take("MSK-000003")
    return desk


def make_app(desk: Desk, clock) -> OpconsoleApp:
    return OpconsoleApp(desk.store.path, desk.config, desk.actor, clock, watch_interval=0.05)


async def until(pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def panes_follow(app: OpconsoleApp, key: str) -> Callable[[], bool]:
    """The script and KB panes show what they have for ticket `key` (the KB's suggestions included)."""
    def check() -> bool:
        screen = app.screen
        player, kb = screen.query_one(ScriptPlayer), screen.query_one(KbPane)
        return (player.shown is not None and player.shown.key == key and kb.ticket is not None
                and kb.ticket["key"] == key and bool(kb.hits))
    return check


def fresh(desk: Desk, key: str):
    with Store.open(desk.store.path) as store:
        return store.ticket(key), [e.op for e in store.events_for(store.ticket(key).id)]


def loaded(app: OpconsoleApp) -> Callable[[], bool]:
    """The queue shows its rows, and the script and KB panes have their parts (mounted after the first frame)."""
    def check() -> bool:
        tables = app.screen.query(QueueTable)
        return (bool(tables) and tables.first().loaded_once and tables.first().current_row is not None
                and app.screen.query_one(ScriptPlayer).built and app.screen.query_one(KbPane).built)
    return check


async def test_three_panes_show_side_by_side_at_200x50(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        screen = app.screen
        titles = [screen.query_one(f"#{p}").border_title for p in ("queue-pane", "script-pane", "kb-pane")]
        assert titles == ["1 Queue", "2 Script", "3 Knowledge base"]
        assert all(screen.query_one(f"#{p}").display for p in ("queue-pane", "script-pane", "kb-pane"))
        table = screen.query_one(QueueTable)
        assert table.total == 3
        assert [table.row_at(i).key for i in range(3)] == ["MSK-000001", "MSK-000002", "MSK-000003"]
        await until(pilot, lambda: "breaching" in str(screen.query_one("#status").render()))
        status = str(screen.query_one("#status").render())
        assert "operator op1" in status and "new 2 · mine 1" in status


async def test_narrow_layout_shows_one_pane_and_keys_switch_it(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, loaded(app))
        shown = lambda: [p for p in ("queue-pane", "script-pane", "kb-pane")  # noqa: E731
                         if app.screen.query_one(f"#{p}").display]
        assert shown() == ["queue-pane"]
        await pilot.press("2")
        assert shown() == ["script-pane"] and app.focused.id == "script"
        await pilot.press("tab")
        assert shown() == ["kb-pane"] and app.focused.id == "kb-query"
        await pilot.press("shift+tab", "shift+tab")
        assert shown() == ["queue-pane"] and app.focused.id == "queue"


async def test_take_assigns_the_ticket_to_me_and_starts_work(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("down", "t")
        await until(pilot, lambda: fresh(stocked, "MSK-000002")[0].status.value == "in_progress")
        ticket, ops = fresh(stocked, "MSK-000002")
        assert ticket.operator == "op1" and ops[-1] == "ticket.take"
        await until(pilot, lambda: "mine 2" in str(app.screen.query_one("#status").render()))


async def test_actions_that_do_not_apply_are_disabled(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("r", "o", "w")  # a new ticket cannot be resolved, reopened or put on waiting
        assert not isinstance(app.screen, ActionForm)
        assert fresh(stocked, "MSK-000001")[1] == ["ticket.create"]


async def test_a_note_is_saved_with_its_event(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("m")
        assert isinstance(app.screen, ActionForm)
        await pilot.press(*"callback at 15:00", "enter")
        await until(pilot, lambda: not isinstance(app.screen, ActionForm))
        events = stocked.history("MSK-000001")
        assert events[-1].op == "ticket.note" and events[-1].note == "callback at 15:00"


async def test_resolve_asks_for_a_code_and_a_note(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("down", "down")
        await until(pilot, lambda: app.screen.selected.key == "MSK-000003")
        await pilot.press("r")
        form = app.screen
        form.query_one("#field-code", Select).value = "replaced_equipment"
        form.query_one("#field-note", Input).focus()
        await pilot.press(*"cartridge replaced", "ctrl+s")
        await until(pilot, lambda: fresh(stocked, "MSK-000003")[0].status.value == "resolved")
        ticket, ops = fresh(stocked, "MSK-000003")
        assert (ticket.resolution_code, ticket.resolution_note) == ("replaced_equipment", "cartridge replaced")
        assert ops[-1] == "ticket.resolve"


async def test_classify_recomputes_the_priority(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("down", "c")
        form = app.screen
        form.query_one("#field-category", Select).value = "accounts.lockout"
        form.query_one("#field-impact", Select).value = "high"
        form.query_one("#field-urgency", Select).value = "high"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: fresh(stocked, "MSK-000002")[0].priority == "P1")
        assert fresh(stocked, "MSK-000002")[0].category == "accounts.lockout"


async def test_reclassify_starts_from_what_the_ticket_has(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("c")  # MSK-000001: network.site_down, high impact, high urgency
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        form = app.screen
        assert [form.query_one(f"#field-{n}", Select).value for n in ("category", "impact", "urgency")] == [
            "network.site_down", "high", "high"]
        form.query_one("#field-urgency", Select).value = "medium"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: fresh(stocked, "MSK-000001")[0].urgency == "medium")
        ticket = fresh(stocked, "MSK-000001")[0]
        assert (ticket.category, ticket.impact, ticket.priority) == ("network.site_down", "high", "P2")


async def test_a_conflict_is_shown_in_the_form_and_the_input_is_kept(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("down", "down")
        await until(pilot, lambda: app.screen.selected.key == "MSK-000003")
        await pilot.press("w")
        await pilot.press(*"send a photo of the error")
        stocked.classify("MSK-000003", urgency="high")  # another operator, meanwhile
        await pilot.press("enter")
        form = app.screen
        await until(pilot, lambda: "changed by op1" in str(form.query_one("#error").render()))
        assert isinstance(app.screen, ActionForm)
        assert form.query_one("#field-reason", Input).value == "send a photo of the error"
        assert fresh(stocked, "MSK-000003")[0].status.value == "in_progress"


async def test_register_a_new_caller_shows_priority_before_saving(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("n", *"89261234567")
        form = app.screen
        await until(pilot, lambda: "New caller" in str(form.query_one("#caller").render()))
        await pilot.press("enter", *"Anna", "enter", *"Store 7", "enter", *"VPN drops every hour", "enter",
                          "enter", *"vpn drop", "enter")
        assert form.query_one("#category").value == "vpn.drops"
        assert form.query_one("VerticalScroll").border_subtitle.startswith("P3 · respond by")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: stocked.store.count_tickets() == 4)
        ticket, ops = fresh(stocked, "MSK-000004")
        assert (ticket.subject, ticket.category, ops) == ("VPN drops every hour", "vpn.drops", ["ticket.create"])
        card = stocked.find_contact("+79261234567")
        assert (card.contact.name, card.contact.site, card.open[0].key) == ("Anna", "Store 7", "MSK-000004")
        await until(pilot, lambda: app.screen.selected is not None and app.screen.selected.key == "MSK-000004")


async def test_a_repeat_caller_is_offered_their_open_ticket(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("n", *"+7 912 345 67 89")
        form = app.screen
        await until(pilot, lambda: "ctrl+o adds this call to MSK-000001" in str(form.query_one("#caller").render()))
        await pilot.press("enter", *"still no internet", "ctrl+o")
        await until(pilot, lambda: stocked.history("MSK-000001")[-1].op == "ticket.note")
        assert stocked.store.count_tickets() == 3
        assert "still no internet" in stocked.history("MSK-000001")[-1].note


async def test_known_caller_classify_and_resolve_within_25_keystrokes(stocked: Desk, clock):
    """Beyond the typed text (phone, subject, note), registering takes at most 12 keys and the whole
    call at most 25."""
    app = make_app(stocked, clock)
    keys = 0

    async def press(*pressed: str) -> None:
        nonlocal keys
        keys += len(pressed)
        await pilot.press(*pressed)

    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await press("n")
        await pilot.press(*"89161234567")  # typed text: the phone
        await until(pilot, lambda: "Забыл пароль" in str(app.screen.query_one("#caller").render()))
        await press("enter")
        await pilot.press(*"Printer offline")  # typed text: the subject
        await press("enter", "enter", *"print", "enter", "ctrl+s")
        registering = keys
        await until(pilot, lambda: app.screen.selected is not None and app.screen.selected.key == "MSK-000004")
        await press("t")
        await until(pilot, lambda: fresh(stocked, "MSK-000004")[0].status.value == "in_progress")
        await until(pilot, lambda: app.screen.selected.status == "in_progress")
        await press("r", "enter", *"restart", "enter", "tab")
        await pilot.press(*"spooler restarted")  # typed text: the note
        await press("enter")
        await until(pilot, lambda: fresh(stocked, "MSK-000004")[0].status.value == "resolved")
    ticket = fresh(stocked, "MSK-000004")[0]
    assert (ticket.category, ticket.resolution_code, ticket.first_contact_resolution) == (
        "printing", "restarted", True)
    assert registering <= 12, f"registering took {registering} keystrokes beyond the typed text"
    assert keys <= 25, f"{keys} keystrokes beyond the typed text"


async def test_escalate_asks_for_what_the_group_needs_and_refuses_it_incomplete(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("down", "down")
        await until(pilot, lambda: app.screen.selected.key == "MSK-000003")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EscalateScreen))
        form = app.screen
        asked = [i.id for i in form.query("#required Input").results(Input)]
        assert asked == ["field-site", "field-callback_phone", "field-asset_tag", "field-device_model",
                         "field-symptom"]
        assert form.query_one("#field-callback_phone", Input).value == "+79031112233"  # from the caller's card
        await pilot.press(*"cleaned rollers, still jams", "ctrl+s")
        error = form.query_one("#error")
        await until(pilot, lambda: "missing site" in str(error.render()))
        assert "asset_tag" in str(error.render()) and fresh(stocked, "MSK-000003")[0].status.value == "in_progress"
        for name, value in (("site", "Store 12"), ("asset_tag", "PR-0042"), ("device_model", "HP M404"),
                            ("symptom", "paper jam at the fuser")):
            form.query_one(f"#field-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await until(pilot, lambda: fresh(stocked, "MSK-000003")[0].status.value == "escalated")
        ticket = fresh(stocked, "MSK-000003")[0]
        assert ticket.group_id == "field_service" and ticket.fields["asset_tag"] == "PR-0042"
        assert stocked.history("MSK-000003")[-1].note == "cleaned rollers, still jams"


async def test_assign_to_a_group(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        app.screen.query_one("#field-group", Select).value = "network"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: fresh(stocked, "MSK-000001")[0].group_id == "network")
        assert fresh(stocked, "MSK-000001")[1][-1] == "ticket.assign"


async def test_filter_shows_only_my_tickets(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("f")
        app.screen.query_one("#field-scope", Select).value = "mine"
        await pilot.press("ctrl+s")
        table = app.screen.query_one(QueueTable)
        await until(pilot, lambda: table.total == 1)
        assert table.row_at(0).key == "MSK-000003"
        await until(pilot, lambda: app.screen.query_one("#queue-pane").border_subtitle == "mine · 1")


async def test_enter_opens_the_card_with_the_history(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await pilot.press("down", "down", "enter")
        assert isinstance(app.screen, CardScreen)
        body = app.screen.query_one("#card-body")
        await until(pilot, lambda: "history:" in str(body.render()))
        assert "ticket.take" in str(body.render()) and "MSK-000003" in str(body.render())
        await pilot.press("escape")
        assert not isinstance(app.screen, CardScreen)


async def test_a_ticket_from_another_process_appears_without_a_keypress(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        subprocess.run([sys.executable, "-m", "opconsole", "--db", str(stocked.store.path), "ticket", "new",
                        "--phone", "+79990001122", "--subject", "Касса не печатает чек"], check=True)
        table = app.screen.query_one(QueueTable)
        await until(pilot, lambda: table.total == 4)
        keys = [table.row_at(i).key for i in range(4) if table.row_at(i)]
        assert "MSK-000004" in keys


async def test_the_palette_offers_the_actions_that_apply(stocked: Desk, clock):
    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: app.screen.selected is not None)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"New", "Take", "Classify", "Escalate", "Filter"} - titles == {"Escalate"}  # MSK-000001 is new
        assert "Resolve" not in titles
        await pilot.press("down", "down")
        await until(pilot, lambda: app.screen.selected.key == "MSK-000003")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Resolve", "Escalate", "Wait"} <= titles and "Take" not in titles


async def test_the_demo_keeps_calls_coming(stocked: Desk, clock):
    app = OpconsoleApp(stocked.store.path, stocked.config, stocked.actor, clock, watch_interval=0.05,
                       demo_calls=(0.05, 0.1))
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: stocked.store.count_tickets() >= 5)
        await until(pilot, lambda: app.screen.query_one(QueueTable).total >= 5)


async def test_a_sleeping_worker_wakes_when_the_console_quits():
    """The demo's worker sleeps up to a minute between calls; quitting must not wait for it."""
    returned = threading.Event()

    class Sleeper(App[None]):
        @work(thread=True)
        def nap(self) -> None:
            sleep_unless_cancelled(30)
            returned.set()

        def on_mount(self) -> None:
            self.nap()

    async with Sleeper().run_test() as pilot:
        await pilot.pause(0.2)
    assert returned.wait(timeout=5), "the worker slept on after the app quit"


def snapshot_app(desk: Desk, clock, directory: Path) -> OpconsoleApp:
    """The demo day on a store at a fixed path, so the status bar reads the same on every run."""
    from opconsole.demo import fill_demo_day

    fill_demo_day(desk, now=clock.now)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "demo.db"
    for leftover in directory.glob("demo.db*"):
        leftover.unlink()
    desk.store.backup(target)
    return OpconsoleApp(target, desk.config, desk.actor, clock)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_workbench_snapshot(size, desk: Desk, clock, snap_compare):
    directory = Path("/tmp") / f"opconsole-snapshot-{size[0]}x{size[1]}"
    app = snapshot_app(desk, clock, directory)

    async def settle(pilot):
        await until(pilot, loaded(app))
        await until(pilot, lambda: "breaching" in str(app.screen.query_one("#status").render()))
        await pilot.press("down", "down")
        await until(pilot, lambda: panes_follow(app, app.screen.selected.key)())
        app.clear_notifications()  # the SQLite-version warning depends on the machine
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=settle)


async def test_a_reload_read_before_a_cursor_move_does_not_undo_it(stocked: Desk, clock, monkeypatch):
    import opconsole.queue as queue_module

    app = make_app(stocked, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await until(pilot, panes_follow(app, "MSK-000001"))  # the start-up's own commits are read
        await pilot.pause(0.3)
        held, release = threading.Event(), threading.Event()
        real_count = queue_module.count

        def held_count(*args):
            held.set()
            release.wait(10)
            return real_count(*args)

        monkeypatch.setattr(queue_module, "count", held_count)
        app.screen.refresh_data()  # as when another terminal commits
        await until(pilot, held.is_set)
        await pilot.press("down")  # while that reload is reading the queue
        monkeypatch.setattr(queue_module, "count", real_count)
        release.set()
        await pilot.pause(0.5)
        assert app.screen.query_one(QueueTable).current_key == "MSK-000002"


async def test_keys_move_the_cursor_while_a_page_is_still_loading():
    """A page read in a worker must not take the list out of the key bindings meanwhile (it did, when
    the set of pages being read was called `loading`, the name of Textual's own loading flag)."""
    from datetime import datetime, timezone

    from opconsole.queue import QueueRow
    from opconsole.sla import AlwaysOpen

    slow = threading.Event()
    now = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)

    def fetch(offset: int, limit: int) -> list[QueueRow]:
        if 100 <= offset < 900:
            slow.wait(10)  # the pages between the first and the last are slow to come
        return [QueueRow(str(i), f"MSK-{i:06d}", "P3", "new", "phone", "first_line", None, f"call {i}", now, now,
                         False, False, 1) for i in range(offset, min(offset + limit, 1000))]

    class ListApp(App[None]):
        def compose(self):
            yield QueueTable(fetch, lambda key: None, lambda: 1000, lambda: now, lambda priority: AlwaysOpen("24/7"))

    app = ListApp()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(QueueTable)
        table.reload()
        await until(pilot, lambda: table.loaded_once)
        table.focus()
        for _ in range(5):  # down to the slow pages
            await pilot.press("pagedown")
        await until(pilot, lambda: bool(table.pages_pending))
        before = table.cursor
        await pilot.press("up", "up")
        assert table.cursor == before - 2
        slow.set()
