"""The call-script player in the workbench (Pilot): number keys, back, enter, the outcome's prefilled
form, and a half-done run resuming after the console restarts. Checked on the store."""

from __future__ import annotations

from pathlib import Path

from test_workbench import loaded, until
from textual.widgets import Input, Select

from opconsole.app import OpconsoleApp
from opconsole.config import load_config
from opconsole.screens.escalate import EscalateScreen
from opconsole.screens.forms import ActionForm
from opconsole.screens.workbench import WorkbenchScreen
from opconsole.scripts.library import load_library
from opconsole.services import Desk
from opconsole.store import Store
from opconsole.widgets.kb_pane import KbPane
from opconsole.widgets.script_player import FieldInput, ScriptPlayer

EXAMPLE = Path(__file__).parent.parent / "opconsole" / "scripts" / "example.toml"


def make_app(desk: Desk, clock) -> OpconsoleApp:
    app = OpconsoleApp(desk.store.path, desk.config, desk.actor, clock, watch_interval=0.05)
    app.library = load_library(desk.config, [EXAMPLE])  # one known script, whatever the bundle holds
    return app


def drive_ticket(desk: Desk) -> str:
    ticket = desk.register(phone="+79161234567", subject="Пропал сетевой диск S:", category="file_access.drive_mapping")
    return ticket.key


def player_of(app: OpconsoleApp) -> ScriptPlayer:
    workbench = next(s for s in app.screen_stack if isinstance(s, WorkbenchScreen))
    return workbench.query_one(ScriptPlayer)


def step_of(app: OpconsoleApp) -> str | None:
    player = player_of(app)
    return player.state.step.id if player.state else None


async def start_script(pilot, app: OpconsoleApp) -> ScriptPlayer:
    await until(pilot, loaded(app))
    await pilot.press("s")
    await until(pilot, lambda: step_of(app) == "which-drive")
    return player_of(app)


def saved_step(desk: Desk) -> str:
    with Store.open(desk.store.path) as store:
        return store.conn.execute("SELECT step FROM script_runs WHERE state = 'active'").fetchone()[0]


async def test_number_keys_answer_backspace_goes_back_and_the_outcome_opens_the_resolve_form(desk: Desk, clock):
    key = drive_ticket(desk)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        player = await start_script(pilot, app)
        assert "Is one drive missing" in str(player.query_one("#script-say").render())
        assert app.focused is player
        await pilot.press("2")
        assert step_of(app) == "vpn-or-office"
        await pilot.press("backspace")
        assert step_of(app) == "which-drive"
        await pilot.press("1")
        assert step_of(app) == "drive-letter" and isinstance(app.focused, FieldInput)
        await until(pilot, lambda: saved_step(desk) == "drive-letter")
        await pilot.press("enter")  # empty: required, refused, nothing lost
        assert step_of(app) == "drive-letter"
        assert "folder_path is required" in str(player.query_one("#script-error").render())
        await pilot.press(*"S:", "space", *r"\\fs01\sales", "enter")
        assert step_of(app) == "reconnect-article"
        kb = app.screen.query_one(KbPane)
        await until(pilot, lambda: kb.reading is not None and kb.reading.id == "kb-map-network-drive")
        assert isinstance(app.focused, ScriptPlayer)  # the article shows; the keys stay with the script
        await pilot.press("enter", "1")
        assert step_of(app) == "resolved"
        await until(pilot, lambda: isinstance(app.screen, ActionForm))
        form = app.screen
        assert form.query_one("#field-code", Select).value == "instructions"
        assert form.query_one("#field-note", Input).value.startswith(r"Reconnected S: \\fs01\sales")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ActionForm))
    with Store.open(desk.store.path) as store:
        ticket = store.ticket(key)
        ops = [e.op for e in store.events_for(ticket.id)]
        script_event = next(e for e in store.events_for(ticket.id) if e.op == "ticket.script")
    assert ticket.status.value == "resolved" and ticket.resolution_code == "instructions"
    assert ticket.fields["folder_path"] == r"S: \\fs01\sales"
    assert ops[-2:] == ["ticket.script", "ticket.resolve"]
    assert "finished: resolve (instructions)" in script_event.note
    assert "→ One drive" in script_event.note and "→ Yes, it works" in script_event.note


async def test_the_escalation_outcome_opens_the_form_with_the_group_reason_and_fields(desk: Desk, clock):
    key = drive_ticket(desk)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await start_script(pilot, app)
        await pilot.press("2", "1")  # all drives; the file server is reachable
        await pilot.press(*r"\\fs01\sales", "enter", *"ivanova.a", "enter", "2", "enter", *"head of sales", "enter")
        assert step_of(app) == "to-access"
        await until(pilot, lambda: isinstance(app.screen, EscalateScreen))
        form = app.screen
        assert form.query_one("#group", Select).value == "access"
        assert form.query_one("#reason", Input).value == (r"No access to \\fs01\sales: needs write access, "
                                                          "approved by head of sales")
        await until(pilot, lambda: bool(form.query("#field-account_login")))
        assert form.query_one("#field-account_login", Input).value == "ivanova.a"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, EscalateScreen))
    with Store.open(desk.store.path) as store:
        ticket = store.ticket(key)
    assert ticket.status.value == "escalated" and ticket.group_id == "access"
    assert ticket.fields["approver"] == "head of sales"


async def test_a_half_done_run_resumes_after_the_console_restarts(desk: Desk, clock):
    drive_ticket(desk)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await start_script(pilot, app)
        await pilot.press("2", "1")
        await until(pilot, lambda: saved_step(desk) == "main-folder")
    again = make_app(desk, clock)
    async with again.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(again))
        await until(pilot, lambda: step_of(again) == "main-folder")
        head = str(again.screen.query_one("#script-head").render())
        assert "which-drive › vpn-or-office › main-folder" in head
        await pilot.press("s")  # resumes, does not start over
        assert step_of(again) == "main-folder" and isinstance(again.focused, FieldInput)
        await pilot.press("backspace")  # in the empty field: back one answer
        assert step_of(again) == "vpn-or-office"
        await until(pilot, lambda: saved_step(desk) == "vpn-or-office")


async def test_a_ticket_no_script_fits_says_so(desk: Desk, clock):
    desk.register(phone="+79161234567", subject="Заказать канцелярию", category="workstation.peripherals")
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        player = app.screen.query_one(ScriptPlayer)
        await until(pilot, lambda: player.shown is not None)
        assert "No call script matches" in str(player.query_one("#script-body").render())
        await pilot.press("s")
        assert player.state is None


async def test_a_broken_script_is_named_and_the_rest_still_run(desk: Desk, clock, tmp_path: Path):
    site = tmp_path / "site-scripts"
    site.mkdir()
    (site / "broken.toml").write_text('id = "broken"\ntitle = "Broken"\nversion = 1\n\n[steps.start]\n'
                                      'ask = "?"\noptions = [{ answer = "Yes", next = "nowhere" }]\n', "utf-8")
    config_file = tmp_path / "config.toml"
    config_file.write_text('[scripts]\ndirs = ["site-scripts"]\n', "utf-8")
    config = load_config(config_file)
    desk.register(phone="+79161234567", subject="Забыл пароль", category="accounts.password_reset")
    app = OpconsoleApp(desk.store.path, config, desk.actor, clock, watch_interval=0.05)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        await until(pilot, lambda: player_of(app).shown is not None)
        [note] = [n for n in app._notifications if "left out" in n.title]
        assert f"{site / 'broken.toml'}:5: step 'start' has no path to an outcome" in note.message
        assert "password-reset" in [s.id for s in player_of(app).shown.suggestions]


async def test_esc_leaves_the_script_for_the_queue(desk: Desk, clock):
    drive_ticket(desk)
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await start_script(pilot, app)
        await pilot.press("escape")
        assert app.focused is app.screen.query_one("#queue")


async def test_the_script_stays_with_its_ticket_when_the_ticket_leaves_the_view(desk: Desk, clock):
    from opconsole.queue import QueueFilter

    first = drive_ticket(desk)
    desk.register(phone="+79161234568", subject="Другая заявка", category="printing.not_printing")
    app = make_app(desk, clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, loaded(app))
        app.screen.set_filter(QueueFilter("unassigned"))
        await until(pilot, lambda: app.screen.query_one("#queue").total == 2)
        await pilot.press("s")  # takes the ticket: it leaves the unassigned view
        await until(pilot, lambda: step_of(app) == "which-drive")
        await until(pilot, lambda: app.screen.query_one("#queue").total == 1)
        await pilot.pause(0.4)
        assert player_of(app).shown.key == first and step_of(app) == "which-drive"
        await pilot.press("1")
        assert step_of(app) == "drive-letter"
