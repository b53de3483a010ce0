"""The console in a real terminal (tmux): the real entry point, keys typed as an operator types them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from opconsole.store import Store

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")]


class Terminal:
    def __init__(self, command: list[str], size: tuple[int, int] = (160, 40)):
        self.socket = f"opconsole-test-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "console", "-x", str(size[0]),
                        "-y", str(size[1]),
                        # tmux hands the first process COLUMNS=80 LINES=24, which would override the pane's size
                        f"env -u COLUMNS -u LINES TERM=xterm-256color {shlex.join(command)}; sleep 60"], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "console"],
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear within {timeout} s; the screen was:\n{self.screen()}")

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "console", *(["-l"] if literal else []),
                        *keys], check=True)
        time.sleep(0.3)  # let the app take each key before the next one: tmux does not wait

    def type(self, text: str) -> None:
        self.keys(text, literal=True)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def wait_for_store(path: Path, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Store.open(path, create=False) as store:
            found = check(store)
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("the store never reached the expected state")


def test_register_and_resolve_a_call_in_a_real_terminal(tmp_path: Path):
    db = tmp_path / "real.db"
    terminal = Terminal([sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "op1"])
    try:
        terminal.wait_for("1 Queue")
        terminal.keys("n")
        terminal.wait_for("New ticket")
        terminal.type("89123456789")
        terminal.wait_for("New caller")
        terminal.keys("Enter")
        terminal.type("Мария Орлова")
        terminal.keys("Enter", "Enter")  # the site can wait
        terminal.type("Не печатает принтер в бухгалтерии")
        terminal.wait_for("P3 · respond by")
        terminal.keys("C-s")
        ticket = wait_for_store(db, lambda s: s.tickets(open_only=True))[0]
        assert ticket.subject == "Не печатает принтер в бухгалтерии" and ticket.status.value == "new"
        assert Store.open(db, create=False).contact(ticket.contact_id).name == "Мария Орлова"
        terminal.wait_for(ticket.key)
        terminal.keys("t")
        wait_for_store(db, lambda s: s.ticket(ticket.key).status.value == "in_progress")
        terminal.wait_for("in work")  # as the operator does: r applies once the queue shows the ticket in work
        terminal.keys("r")
        terminal.wait_for(f"Resolve {ticket.key}")
        terminal.keys("Enter")  # open the resolution list, type to find the code, pick it
        terminal.type("Restart")
        terminal.keys("Enter")
        terminal.keys("Tab")
        terminal.type("Перезапущена служба печати")
        terminal.keys("Enter")
        resolved = wait_for_store(db, lambda s: (t := s.ticket(ticket.key)).status.value == "resolved" and t)
        assert resolved.resolution_note == "Перезапущена служба печати"
        assert resolved.resolution_code == "restarted"
        terminal.keys("q")
        deadline = time.monotonic() + 15
        while "1 Queue" in terminal.screen() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "1 Queue" not in terminal.screen(), "the console did not quit on q"
    finally:
        terminal.close()


def test_an_unknown_operator_ends_the_console_with_exit_2_and_the_reason(tmp_path: Path):
    """The workbench paints before the store is checked; a refusal still ends it as the command line would."""
    db = tmp_path / "real.db"
    subprocess.run([sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "op1", "init"], check=True,
                   capture_output=True)
    console = shlex.join([sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "nobody"])
    terminal = Terminal(["sh", "-c", f"{console}; echo console-exit=$?"])
    try:
        screen = terminal.wait_for("console-exit=")
        assert "console-exit=2" in screen
        assert "opconsole: unknown operator 'nobody'" in screen
        assert "Traceback" not in screen
        with Store.open(db, create=False) as store:
            assert [o.login for o in store.operators()] == ["op1"]
    finally:
        terminal.close()


SCALES_SCRIPT = """
id = "scales-labels"
title = "Весы не печатают этикетки"
version = 1
language = "ru"
categories = ["pos.scales"]
keywords = ["весы"]

[steps.roll]
ask = "Лента этикеток заправлена и горит индикатор готовности?"
options = [
  { answer = "Ленты нет, заправили", next = "model" },
  { answer = "Лента есть, индикатор красный", next = "model" },
]

[steps.model]
collect = "device_model"
prompt = "Модель весов (на шильдике сзади)"
next = "done"

[steps.done]
resolve = { code = "instructions", note = "Весы {device_model}: заправили ленту этикеток, печать идёт." }
"""


def test_walk_a_call_script_to_its_outcome_in_a_real_terminal(tmp_path: Path):
    db, scripts = tmp_path / "real.db", tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "scales.toml").write_text(SCALES_SCRIPT, "utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[scripts]\ndirs = ["scripts"]\n', "utf-8")
    base = [sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "op1", "--config", str(config)]
    created = subprocess.run([*base, "ticket", "new", "--phone", "+79161234567", "--subject", "Весы в магазине 12",
                              "--category", "pos.scales", "--json"], check=True, capture_output=True, text=True)
    key = json.loads(created.stdout)["key"]
    terminal = Terminal(base)
    try:
        terminal.wait_for("Весы не печатают этикетки")  # suggested for the selected ticket
        terminal.keys("s")
        terminal.wait_for("Лента этикеток заправлена")
        terminal.keys("1")
        terminal.wait_for("Модель весов")
        terminal.type("CAS CL3000")
        terminal.keys("Enter")
        terminal.wait_for("Outcome: resolve")
        terminal.wait_for(f"Resolve {key}")  # the form opens with the outcome filled in
        terminal.keys("C-s")
        resolved = wait_for_store(db, lambda s: (t := s.ticket(key)).status.value == "resolved" and t)
        assert resolved.resolution_note == "Весы CAS CL3000: заправили ленту этикеток, печать идёт."
        assert resolved.fields["device_model"] == "CAS CL3000"
    finally:
        terminal.close()


def test_backend_mode_in_a_real_terminal(tmp_path: Path, config, clock):
    """The console syncs on its own: another site's ticket shows up, and losing the server shows."""
    from sync_support import ServerProcess, backend_for, open_site

    from opconsole.sync.client import HttpTransport

    server = ServerProcess(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server.log").start()
    backend = backend_for(server.db_url, config)
    token = backend.create_token("op1", "lead")[1]
    db = tmp_path / "site.db"
    env = {**os.environ, "OPCONSOLE_TOKEN": token}
    for args in (["init", "--site", "MSK"], ["login", server.url]):
        subprocess.run([sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "op1", *args],
                       env=env, check=True, capture_output=True)
    terminal = Terminal(["env", f"OPCONSOLE_TOKEN={token}", sys.executable, "-m", "opconsole", "--db", str(db),
                         "--operator", "op1"])
    other = open_site(tmp_path / "spb.db", "SPB", config, clock)
    try:
        terminal.wait_for("● online")
        other.desk.register(subject="Кассовый аппарат не печатает чеки", category="printing.not_printing")
        other.syncer(HttpTransport(server.url, token)).once()
        terminal.wait_for("SPB-000001")
        server.kill()
        terminal.wait_for("○ offline")
    finally:
        terminal.close()
        other.store.close()
        server.stop()
        backend.db.close()


def test_the_lead_view_in_a_real_terminal(tmp_path: Path):
    """`opconsole lead`: a call another terminal registers shows up unassigned, and the lead raises its
    priority with a reason from the keyboard."""
    db = tmp_path / "lead.db"
    for args in (["init", "--site", "MSK"], ["operator", "add", "lead1", "--role", "lead", "--name", "Сергей Смирнов"]):
        subprocess.run([sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "admin", *args],
                       check=True, capture_output=True)
    terminal = Terminal([sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "lead1", "lead"])
    try:
        terminal.wait_for("3 Queues by group")
        terminal.wait_for("0 unassigned")
        subprocess.run([sys.executable, "-m", "opconsole", "--db", str(db), "--operator", "admin", "ticket", "new",
                        "--phone", "+79990001122", "--subject", "Касса не печатает чек"], check=True,
                       capture_output=True)
        terminal.wait_for("1 unassigned")
        terminal.wait_for("MSK-000001")
        terminal.keys("2")
        terminal.keys("p")
        terminal.wait_for("Raise the priority of MSK-000001")
        terminal.keys("Tab")  # from the priority (P1 offered first) to the reason
        terminal.type("все кассы магазина стоят")
        terminal.keys("Enter")
        terminal.wait_for("MSK-000001 raised to P1")
        ticket = wait_for_store(db, lambda store: store.ticket("MSK-000001").priority == "P1" and store.ticket(
            "MSK-000001"))
        assert ticket.priority == "P1"
    finally:
        terminal.close()
