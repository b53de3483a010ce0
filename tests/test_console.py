"""The console placeholder: it opens on the store, shows the queue, and quits with q."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from opconsole.app import OpconsoleApp
from opconsole.services import Desk


async def test_the_console_shows_the_open_queue_and_quits(desk: Desk):
    desk.register(phone="+79123456789", subject="Не работает сканер штрихкодов")
    app = OpconsoleApp(desk)
    async with app.run_test(size=(120, 30)) as pilot:
        summary = str(app.query_one("#summary").render())
        assert "MSK-000001" in summary and "сканер" in summary
        await pilot.press("q")
    assert app.return_code == 0


def wait_for_screen(socket: str, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "console"],
                                capture_output=True, text=True).stdout
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear within {timeout} s; the screen was:\n{screen}")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")
def test_the_console_runs_in_a_real_terminal(tmp_path: Path):
    db = tmp_path / "real.db"
    subprocess.run([sys.executable, "-m", "opconsole", "--db", str(db), "ticket", "new",
                    "--phone", "+79123456789", "--subject", "Нет интернета в магазине 45"], check=True)
    socket = f"opconsole-test-{uuid.uuid4().hex[:8]}"
    command = shlex.join([sys.executable, "-m", "opconsole", "--db", str(db)])
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "console", "-x", "120", "-y", "30",
                    f"env TERM=xterm-256color {command}; sleep 30"], check=True)
    try:
        screen = wait_for_screen(socket, "Press q to quit")
        assert "SD-000001" in screen and "Нет интернета" in screen
        subprocess.run(["tmux", "-L", socket, "send-keys", "-t", "console", "q"], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "console"],
                                    capture_output=True, text=True).stdout
            if "Press q to quit" not in screen:
                break
            time.sleep(0.2)
        assert "Press q to quit" not in screen, "the console did not quit on q"
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
