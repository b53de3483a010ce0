"""The shift lead's view through Pilot: the panes, live updates from other processes, the lead's
actions checked on the store, switching views, and snapshots."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, Select, Static

from opconsole.app import OpconsoleApp
from opconsole.domain import now_utc
from opconsole.screens.card import CardScreen
from opconsole.screens.forms import ActionForm
from opconsole.screens.lead import LeadScreen
from opconsole.screens.workbench import WorkbenchScreen
from opconsole.services import Desk
from opconsole.widgets.board import KpiTile
from opconsole.widgets.text_pane import TextPane
from opconsole.widgets.queue_table import QueueTable
from test_workbench import snapshot_app, until


@pytest.fixture
def desk_with_lead(desk: Desk, clock) -> Desk:
    """Four open tickets on a Monday morning, worked by op1 and op2; the lead is lead1."""
    desk.add_operator("op2", "Ольга Лебедева", "operator", [])
    desk.add_operator("lead1", "Сергей Смирнов", "lead", [])
    desk.register(phone="+79123456789", subject="Нет интернета в магазине 45", category="network.site_down",
                  impact="high", urgency="high")
    desk.register(phone="+79161234567", subject="Забыл пароль от учётной записи", category="accounts")
    desk.register(phone="+79031112233", subject="Не печатает принтер", category="printing", impact="low",
                  urgency="low")
    desk.register(subject="Outlook просит пароль", category="mail")
    clock.advance(minutes=2)
    desk.take("MSK-000003")
    clock.advance(minutes=1)
    return Desk(desk.store, desk.config, "lead1", clock)


def lead_app(desk: Desk, clock=now_utc, role=None) -> OpconsoleApp:
    return OpconsoleApp(desk.store.path, desk.config, desk.actor, clock, watch_interval=0.05, view="lead",
                        role=role or desk.operator().role)


def board_read(app: OpconsoleApp):
    return lambda: isinstance(app.screen, LeadScreen) and app.screen.snapshot is not None and all(
        t.loaded_once for t in app.screen.query(QueueTable))


def text_of(widget: Static | TextPane) -> str:
    """What a Static or a board pane shows, as plain text."""
    if isinstance(widget, TextPane):
        return widget.text.plain
    console = Console(width=200, color_system=None, file=io.StringIO())
    console.print(widget.content)
    return console.file.getvalue()


def list_keys(table: QueueTable) -> list[str]:
    return [table.row_at(i).key for i in range(table.total) if table.row_at(i)]


async def test_the_lead_view_shows_the_desk(desk_with_lead: Desk, clock):
    app = lead_app(desk_with_lead, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, board_read(app))
        screen = app.screen
        groups = text_of(screen.query_one("#groups", TextPane))
        assert "First line" in groups and "Network operations" in groups
        assert "Open by age  < 1 h 4 · 1-4 h 0" in groups
        unassigned = screen.query_one("#unassigned_longest", QueueTable)
        assert list_keys(unassigned) == ["MSK-000001", "MSK-000002", "MSK-000004"]  # the longest waiting first
        overdue = screen.query_one("#overdue", QueueTable)
        assert list_keys(overdue) == ["MSK-000001"]  # P1: response due 15 min after 09:30, now 09:33
        operators = text_of(screen.query_one("#operators", TextPane))
        assert "op1" in operators and "take MSK-000003" in operators
        tile = screen.query_one("#tile-sla_response", KpiTile)
        assert "n/a" in text_of(tile) and tile.has_class("-na")  # nothing has fallen due yet
        assert "0/4" in text_of(screen.query_one("#tile-taken_within", KpiTile))  # MSK-3 was taken in 2 min
        assert screen.query_one("#overdue-pane").border_subtitle == "0 breached · 1 due soon"


async def test_a_change_from_another_process_updates_tiles_and_panes_without_a_keypress(desk_with_lead: Desk):
    app = lead_app(desk_with_lead)  # the real clock, as the other process has
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, board_read(app))
        screen = app.screen
        before = screen.snapshot
        subprocess.run([sys.executable, "-m", "opconsole", "--db", str(desk_with_lead.store.path), "--operator",
                        "op2", "ticket", "new", "--phone", "+79990001122", "--subject", "Касса не печатает чек"],
                       check=True)
        unassigned = screen.query_one("#unassigned_longest", QueueTable)
        await until(pilot, lambda: "MSK-000005" in list_keys(unassigned))
        await until(pilot, lambda: screen.snapshot.unassigned == before.unassigned + 1)
        registered = screen.snapshot.figures.kpi("escalation_rate").denominator
        assert registered == before.figures.kpi("escalation_rate").denominator + 1  # created this shift
        assert f"0/{registered:g}" in text_of(screen.query_one("#tile-escalation_rate", KpiTile))
        assert sum(screen.snapshot.arrivals.today) == sum(before.arrivals.today) + 1
        assert "create MSK-000005" in text_of(screen.query_one("#operators", TextPane))


async def test_reassign_a_marked_selection_reaches_the_store(desk_with_lead: Desk, clock):
    app = lead_app(desk_with_lead, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, board_read(app))
        await pilot.press("2", "space", "space")  # mark the two longest waiting
        table = app.screen.query_one("#unassigned_longest", QueueTable)
        assert list(table.marked) == ["MSK-000001", "MSK-000002"]
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        app.screen.query_one("#field-to", Select).value = "op2"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, LeadScreen))
        store = desk_with_lead.store
        assert [store.ticket(k).operator for k in ("MSK-000001", "MSK-000002", "MSK-000004")] == ["op2", "op2", None]
        assert {(e.actor, e.op) for k in ("MSK-000001", "MSK-000002") for e in [store.events_for(
            store.ticket(k).id)[-1]]} == {("lead1", "ticket.assign")}
        assert table.marked == {}
        await until(pilot, lambda: list_keys(table) == ["MSK-000004"])  # they left the unassigned list


async def test_a_refused_reassignment_keeps_the_form_and_what_was_chosen(desk_with_lead: Desk, clock):
    app = lead_app(desk_with_lead, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, board_read(app))
        await pilot.press("2")
        desk_with_lead.classify("MSK-000001", urgency="medium")  # changed after the lead's list read it
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        app.screen.query_one("#field-group", Select).value = "network"
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#error", Static)
        await until(pilot, lambda: "was changed" in text_of(error))
        assert isinstance(app.screen, ActionForm) and app.screen.query_one("#field-group", Select).value == "network"
        assert desk_with_lead.store.ticket("MSK-000001").group_id == "first_line"


async def test_a_selection_partly_refused_keeps_the_refused_ones_marked(desk_with_lead: Desk, clock):
    app = lead_app(desk_with_lead, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, board_read(app))
        await pilot.press("2", "space", "space")
        desk_with_lead.classify("MSK-000002", impact="high")  # changed after the lead marked it
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        app.screen.query_one("#field-group", Select).value = "access"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, LeadScreen))
        store = desk_with_lead.store
        assert [store.ticket(k).group_id for k in ("MSK-000001", "MSK-000002")] == ["access", "first_line"]
        assert list(app.screen.query_one("#unassigned_longest", QueueTable).marked) == ["MSK-000002"]


async def test_raise_a_priority_with_a_reason(desk_with_lead: Desk, clock):
    app = lead_app(desk_with_lead, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, board_read(app))
        await pilot.press("2", "down", "p")  # MSK-000002, P3
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        form = app.screen
        assert [option[1] for option in form.spec.fields[0].choices] == ["P1", "P2"]
        form.query_one("#field-priority", Select).value = "P2"
        form.query_one("#field-reason", Input).value = "the director cannot log in before the board meeting"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, LeadScreen))
        ticket = desk_with_lead.store.ticket("MSK-000002")
        last = desk_with_lead.store.events_for(ticket.id)[-1]
        assert (ticket.priority, last.op, last.actor) == ("P2", "ticket.prioritise", "lead1")
        assert last.note == "the director cannot log in before the board meeting"


async def test_open_any_tickets_card_by_its_key(desk_with_lead: Desk, clock):
    app = lead_app(desk_with_lead, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, board_read(app))
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        await pilot.press(*"msk-99", "enter")
        error = app.screen.query_one("#error", Static)
        await until(pilot, lambda: "no ticket" in text_of(error))
        field = app.screen.query_one("#field-key", Input)
        assert field.value == "msk-99"  # the typing is kept
        field.value = "msk-3"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, CardScreen))
        assert app.screen.key == "MSK-000003"


async def test_leads_switch_views_and_operators_cannot(desk_with_lead: Desk, clock):
    lead = OpconsoleApp(desk_with_lead.store.path, desk_with_lead.config, "lead1", clock, watch_interval=0.05)
    async with lead.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: isinstance(lead.screen, WorkbenchScreen) and lead.role.value == "lead")
        await until(pilot, lambda: lead.screen.query_one(QueueTable).total == 4)
        await pilot.press("f3")
        await until(pilot, board_read(lead))
        desk_with_lead.register(subject="Сканер не работает", category="workstation")  # while the workbench is away
        await until(pilot, lambda: "MSK-000005" in list_keys(lead.screen.query_one("#unassigned_longest", QueueTable)))
        await pilot.press("f2")
        assert isinstance(lead.screen, WorkbenchScreen)
        await until(pilot, lambda: lead.screen.query_one(QueueTable).total == 5)  # read again on its return
    operator = OpconsoleApp(desk_with_lead.store.path, desk_with_lead.config, "op2", clock, watch_interval=0.05)
    async with operator.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: operator.stores is not None and operator.store_opened.is_set())
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(operator.screen, WorkbenchScreen)
        assert operator.check_action("view", ("lead",)) is False


def test_the_lead_command_refuses_an_operator(desk_with_lead: Desk):
    result = subprocess.run([sys.executable, "-m", "opconsole", "--db", str(desk_with_lead.store.path),
                             "--operator", "op2", "lead"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "op2 is an operator; the lead view is for shift leads and admins" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_lead_view_snapshot(size, desk: Desk, clock, snap_compare):
    directory = Path("/tmp") / f"opconsole-lead-snapshot-{size[0]}x{size[1]}"
    app = snapshot_app(desk, clock, directory)
    app = OpconsoleApp(app.store_path, desk.config, desk.actor, clock, view="lead", role=desk.operator().role)

    async def settle(pilot):
        await until(pilot, board_read(app))
        await pilot.press("2", "down", "space")
        app.clear_notifications()  # the SQLite-version warning depends on the machine
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=settle)
