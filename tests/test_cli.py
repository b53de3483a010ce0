"""The `opconsole` command line as a user (or a robot) sees it: a real subprocess each time.

Exit codes, stderr and "no traceback" are part of the contract (../shared/design/CLI.md), so every
command runs as `python -m opconsole --db STORE ...` in a child process. Stores are built once per
session (an initialised empty one, and one with tickets in several states) and copied for each test.

Every refused command is checked four ways: exit 2, a short plain message on stderr ("opconsole: ..."
or click's own usage "Error: ..."), no traceback anywhere, and the store left exactly as it was
(`opconsole export` before and after, plus the meta and counters tables that export leaves out).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from opconsole.exchange import export_lines
from opconsole.store import Store

OPERATOR = "op1"
PHONE_IVAN = "+7 495 123-45-67"
PHONE_IVAN_E164 = "+74951234567"
PHONE_OLGA = "+7 812 555-01-02"
PHONE_OLGA_E164 = "+78125550102"


# --- running the program ------------------------------------------------------------------------

@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return (f"$ {' '.join(self.args)}\nexit {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")

    def json(self):
        return json.loads(self.stdout)


def environment(home: Path, operator: str | None = OPERATOR) -> dict[str, str]:
    """The child's environment: nothing from the developer's own store, config or operator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPCONSOLE_")}
    env["OPCONSOLE_DB"] = str(home / "env-default.db")
    env["XDG_CONFIG_HOME"] = str(home / "xdg-config")
    env["XDG_DATA_HOME"] = str(home / "xdg-data")
    if operator:
        env["OPCONSOLE_OPERATOR"] = operator
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run(db: Path, *args: str, operator: str | None = OPERATOR, python_flags: tuple[str, ...] = (),
        env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    command = [sys.executable, *python_flags, "-m", "opconsole", "--db", str(db), *args]
    done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace",
                          env=environment(db.parent, operator) | (env or {}), cwd=db.parent, timeout=60,
                          input=stdin)
    return Result([str(a) for a in command[command.index("opconsole"):]], done.returncode, done.stdout,
                  done.stderr)


def ok(db: Path, *args: str, **kwargs) -> Result:
    result = run(db, *args, **kwargs)
    assert result.returncode == 0, result
    assert "Traceback" not in result.stdout + result.stderr, result
    return result


def export_text(db: Path) -> str:
    """What `opconsole export` prints, computed in this process (the state check runs after every
    refused command; the subprocess form is tested on its own in test_export_to_file_and_stdout)."""
    with Store.open(db, create=False) as store:
        return "".join(line + "\n" for line in export_lines(store))


def bookkeeping(db: Path) -> list[tuple]:
    """What `export` leaves out (site prefix, client id, key counters), read without writing."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return (conn.execute("SELECT 'meta', key, value FROM meta ORDER BY key").fetchall()
                + conn.execute("SELECT 'counter', name, value FROM counters ORDER BY name").fetchall())
    finally:
        conn.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecars(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir()
                  if p.name in (f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"))


def assert_refused(result: Result, *needles: str, usage_error: bool = False) -> None:
    """Exit 2, one or a few plain lines on stderr, nothing on stdout, no traceback."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr, result
    assert result.stdout == "", result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 4, result
    if usage_error:
        assert any(line.startswith("Error:") for line in lines), result
    else:
        assert lines[0].startswith("opconsole:"), result
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in stderr\n{result}"


# --- shared stores ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    path: Path
    export: str
    bookkeeping: list[tuple]


def build_template(directory: Path, fill) -> Template:
    directory.mkdir(parents=True)
    db = directory / "store.db"
    ok(db, "init", "--site", "MSK")
    fill(db)
    assert not sidecars(db), "a finished command left WAL files behind; the copy would be incomplete"
    return Template(db, export_text(db), bookkeeping(db))


def fill_worked(db: Path) -> None:
    """MSK-000001 new, MSK-000002 in progress, MSK-000003 resolved, MSK-000004 closed."""
    keys = [
        ok(db, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "Printer jams on every page",
           "--name", "Ivan Petrov", "--site", "42").stdout.strip(),
        ok(db, "ticket", "new", "--phone", PHONE_OLGA, "--subject", "VPN does not connect",
           "--category", "vpn.no_connect", "--name", "Olga Smirnova").stdout.strip(),
        ok(db, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "Forgot password",
           "--category", "accounts.password_reset").stdout.strip(),
        ok(db, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "Mouse does not work").stdout.strip(),
    ]
    assert keys == ["MSK-000001", "MSK-000002", "MSK-000003", "MSK-000004"]
    for key in keys[1:]:
        ok(db, "ticket", "take", key)
    ok(db, "ticket", "resolve", "MSK-000003", "--code", "password_reset")
    ok(db, "ticket", "resolve", "MSK-000004", "--code", "instructions")
    ok(db, "ticket", "close", "MSK-000004")


@pytest.fixture(scope="session")
def blank_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory.mktemp("templates") / "blank", lambda db: None)


@pytest.fixture(scope="session")
def worked_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory.mktemp("templates") / "worked", fill_worked)


def copy_of(template: Template, tmp_path: Path, name: str = "store.db") -> Path:
    target = tmp_path / name
    shutil.copyfile(template.path, target)
    return target


@pytest.fixture
def blank(blank_template: Template, tmp_path: Path) -> Path:
    return copy_of(blank_template, tmp_path)


@pytest.fixture
def worked(worked_template: Template, tmp_path: Path) -> Path:
    return copy_of(worked_template, tmp_path)


def assert_unchanged(db: Path, template: Template) -> None:
    assert export_text(db) == template.export, "the refused command changed the store's records"
    assert bookkeeping(db) == template.bookkeeping, "the refused command changed meta or counters"


def required_fields(db: Path, group: str, category: str) -> list[str]:
    """What `group list --json` says `group` needs for a ticket in `category`."""
    groups = {g["id"]: g for g in ok(db, "group", "list", "--json").json()}
    requires = groups[group]["requires"]
    names: list[str] = []
    for key in ("*", category.split(".", 1)[0], category):
        for name in requires.get(key, []):
            if name not in names:
                names.append(name)
    return names


# --- init ---------------------------------------------------------------------------------------

def test_init_creates_the_store_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "new" / "store.db"
    db.parent.mkdir()
    assert not db.exists()

    first = ok(db, "init", "--site", "MSK")
    assert db.exists() and db.stat().st_size > 0
    assert "MSK-" in first.stdout
    assert [o["login"] for o in ok(db, "operator", "list", "--json").json()] == [OPERATOR]
    before = export_text(db)

    again = ok(db, "init")
    assert "MSK-" in again.stdout
    assert export_text(db) == before
    assert ok(db, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s").stdout.strip() == "MSK-000001"


def test_init_can_change_the_prefix_while_the_store_has_no_tickets(blank: Path) -> None:
    assert "SPB-" in ok(blank, "init", "--site", "spb").stdout
    assert ok(blank, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s").stdout.strip() == "SPB-000001"


def test_init_refuses_to_change_the_prefix_once_tickets_exist(worked: Path, worked_template: Template) -> None:
    assert_refused(run(worked, "init", "--site", "SPB"), "MSK")
    assert_unchanged(worked, worked_template)
    assert ok(worked, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s").stdout.strip() == "MSK-000005"


# --- tickets: register, list, show --------------------------------------------------------------

def test_ticket_new_prints_the_key_and_json(blank: Path) -> None:
    first = ok(blank, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "Printer jams", "--name", "Ivan")
    assert first.stdout == "MSK-000001\n"

    second = ok(blank, "ticket", "new", "--phone", PHONE_OLGA, "--subject", "VPN", "--category", "vpn.no_connect",
                "--impact", "high", "--urgency", "high", "--channel", "email", "--json").json()
    assert second["key"] == "MSK-000002"
    assert second["status"] == "new"
    assert second["subject"] == "VPN"
    assert second["category"] == "vpn.no_connect"
    assert second["channel"] == "email"
    assert second["priority"] == "P1"
    assert second["group_id"] == "first_line"
    assert second["operator"] is None
    assert second["contact_id"]


def test_ticket_new_records_a_new_callers_card(blank: Path) -> None:
    ok(blank, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "Касса не печатает", "--name", "Иван Петров",
       "--site", "Магазин 12", "--email", "m12@example.org", "--org", "Розница")
    card = ok(blank, "contact", "find", PHONE_IVAN, "--json").json()
    assert (card["name"], card["site"], card["email"], card["organisation"]) == (
        "Иван Петров", "Магазин 12", "m12@example.org", "Розница")


def test_ticket_list_default_is_the_open_queue(worked: Path) -> None:
    queue = ok(worked, "ticket", "list", "--json").json()
    assert isinstance(queue, list)
    assert sorted(t["key"] for t in queue) == ["MSK-000001", "MSK-000002"]
    for t in queue:
        assert {"key", "status", "priority", "subject", "group_id", "operator", "sla_due", "category"} <= t.keys()

    text = ok(worked, "ticket", "list").stdout
    assert text.splitlines()[0].split()[:3] == ["KEY", "PRI", "STATUS"]
    assert "MSK-000001" in text and "MSK-000002" in text
    assert "MSK-000003" not in text and "MSK-000004" not in text


def test_ticket_list_filters(worked: Path) -> None:
    def keys(*args: str, operator: str = OPERATOR) -> list[str]:
        return sorted(t["key"] for t in ok(worked, "ticket", "list", "--json", *args, operator=operator).json())

    assert keys("--status", "resolved") == ["MSK-000003"]
    assert keys("--status", "closed") == ["MSK-000004"]
    assert keys("--status", "new") == ["MSK-000001"]
    assert keys("--mine") == ["MSK-000002"]
    assert keys("--all") == ["MSK-000001", "MSK-000002", "MSK-000003", "MSK-000004"]
    ok(worked, "operator", "add", "op2")
    assert keys("--mine", operator="op2") == []


def test_ticket_show_human_and_json(worked: Path) -> None:
    text = ok(worked, "ticket", "show", "MSK-000003").stdout
    assert text.startswith("MSK-000003")
    assert "Forgot password" in text
    assert "resolved" in text
    assert "Ivan Petrov" in text and PHONE_IVAN_E164 in text
    assert "history:" in text
    for op in ("ticket.create", "ticket.take", "ticket.resolve"):
        assert op in text

    shown = ok(worked, "ticket", "show", "msk-3", "--json").json()  # keys are case-insensitive
    assert shown["key"] == "MSK-000003"
    assert shown["status"] == "resolved"
    assert shown["resolution_code"] == "password_reset"
    assert shown["contact"]["name"] == "Ivan Petrov"
    assert shown["contact"]["phones"] == [PHONE_IVAN_E164]
    assert shown["contact"]["site"] == "42"
    assert [e["op"] for e in shown["events"]] == ["ticket.create", "ticket.take", "ticket.resolve"]
    assert all(e["actor"] == OPERATOR and e["entity_id"] == shown["id"] for e in shown["events"])
    assert shown["events"][-1]["changes"]["status"] == ["in_progress", "resolved"]


# --- tickets: the whole lifecycle ---------------------------------------------------------------

def test_ticket_lifecycle(worked: Path) -> None:
    key = "MSK-000001"

    def change(*args: str) -> dict:
        return ok(worked, "ticket", *args, "--json").json()

    t = change("classify", key, "--category", "printing.paper_jam", "--impact", "high", "--urgency", "high")
    assert (t["category"], t["priority"], t["status"]) == ("printing.paper_jam", "P1", "new")

    t = change("assign", key, "--group", "field_service")
    assert (t["group_id"], t["operator"]) == ("field_service", None)

    t = change("assign", key, "--to", OPERATOR)
    assert t["operator"] == OPERATOR

    plain = ok(worked, "ticket", "take", key).stdout
    assert plain.startswith(f"{key} in progress")

    assert ok(worked, "ticket", "note", key, "called the caller back").stdout.strip() == f"note added to {key}"

    t = change("wait", key, "--reason", "send a photo of the error")
    assert t["status"] == "waiting_on_caller"
    assert t["wait_count"] == 1

    t = change("take", key)
    assert t["status"] == "in_progress"

    needed = required_fields(worked, "field_service", "printing.paper_jam")
    assert {"site", "callback_phone", "error_text"} <= set(needed)  # the defaults' requirement for a jam
    pairs = [arg for name in needed for arg in ("--field", f"{name}=value of {name}")]
    t = change("escalate", key, "--group", "field_service", "--reason", "jam persists after cleaning", *pairs)
    assert (t["status"], t["group_id"], t["operator"]) == ("escalated", "field_service", None)
    assert {name: t["fields"].get(name) for name in needed} == {name: f"value of {name}" for name in needed}
    assert t["escalation_count"] == 1

    t = change("take", key)
    assert (t["status"], t["group_id"], t["operator"]) == ("in_progress", "first_line", OPERATOR)

    t = change("resolve", key, "--code", "replaced_equipment", "--note", "replaced the drum")
    assert (t["status"], t["resolution_code"], t["resolution_note"]) == ("resolved", "replaced_equipment",
                                                                        "replaced the drum")

    t = change("reopen", key, "--reason", "jams again")
    assert (t["status"], t["reopen_count"], t["resolution_code"]) == ("in_progress", 1, None)

    t = change("resolve", key, "--code", "restarted")
    assert t["status"] == "resolved"

    t = change("close", key)
    assert t["status"] == "closed"
    assert t["closed_at"]

    shown = ok(worked, "ticket", "show", key, "--json").json()
    assert [e["op"] for e in shown["events"]] == [
        "ticket.create", "ticket.classify", "ticket.assign", "ticket.assign", "ticket.take", "ticket.note",
        "ticket.wait", "ticket.take", "ticket.escalate", "ticket.take", "ticket.resolve", "ticket.reopen",
        "ticket.resolve", "ticket.close",
    ]
    notes = [e["note"] for e in shown["events"] if e["note"]]
    assert notes == ["called the caller back", "send a photo of the error", "jam persists after cleaning",
                     "jams again"]
    assert [e["version"] for e in shown["events"] if e["op"] != "ticket.note"] == list(range(1, 14))
    assert shown["version"] == 13

    text = ok(worked, "ticket", "show", key).stdout
    assert "«called the caller back»" in text
    assert "ticket.close" in text


def test_escalation_fills_site_and_callback_phone_from_the_contact(worked: Path) -> None:
    """defaults.toml: `site` and `callback_phone` come from the caller's card when it has them."""
    needed = required_fields(worked, "field_service", "workstation")
    assert "site" in needed and "callback_phone" in needed
    ok(worked, "ticket", "classify", "MSK-000001", "--category", "workstation")
    ok(worked, "ticket", "take", "MSK-000001")
    given = [a for name in needed if name not in ("site", "callback_phone") for a in ("--field", f"{name}=x")]
    t = ok(worked, "ticket", "escalate", "MSK-000001", "--group", "field_service", "--reason", "dead PSU",
           *given, "--json").json()
    assert t["status"] == "escalated"
    assert t["fields"]["site"] == "42"
    assert t["fields"]["callback_phone"] == PHONE_IVAN_E164


def test_take_by_another_operator_and_operator_add_list(worked: Path) -> None:
    added = ok(worked, "operator", "add", "op2", "--name", "Olga Lead", "--role", "lead", "--group", "network")
    assert "op2" in added.stdout
    operators = {o["login"]: o for o in ok(worked, "operator", "list", "--json").json()}
    assert set(operators) == {OPERATOR, "op2"}
    assert operators["op2"] == {"login": "op2", "name": "Olga Lead", "role": "lead", "groups": ["network"],
                                "active": True}
    assert operators[OPERATOR]["role"] == "admin"
    text = ok(worked, "operator", "list").stdout
    assert "op2" in text and "Olga Lead" in text

    t = ok(worked, "ticket", "take", "MSK-000001", "--json", operator="op2").json()
    assert (t["status"], t["operator"]) == ("in_progress", "op2")
    mine = ok(worked, "ticket", "list", "--mine", "--json", operator="op2").json()
    assert [m["key"] for m in mine] == ["MSK-000001"]
    assert ok(worked, "ticket", "show", "MSK-000001", "--json").json()["events"][-1]["actor"] == "op2"


def test_link(worked: Path) -> None:
    assert ok(worked, "ticket", "link", "MSK-000001", "MSK-000003").stdout.strip() == "MSK-000001 related MSK-000003"
    assert "already linked" in ok(worked, "ticket", "link", "MSK-000001", "MSK-000003").stdout
    one = ok(worked, "ticket", "show", "MSK-000001", "--json").json()
    three = ok(worked, "ticket", "show", "MSK-000003", "--json").json()
    assert [(link["kind"], link["key"]) for link in one["links"]] == [("related", "MSK-000003")]
    assert [(link["kind"], link["key"]) for link in three["links"]] == [("related", "MSK-000001")]
    assert one["events"][-1]["op"] == "ticket.link"


def test_linking_the_same_pair_the_other_way_round_is_one_link(worked: Path) -> None:
    ok(worked, "ticket", "link", "MSK-000001", "MSK-000003")
    ok(worked, "ticket", "link", "MSK-000003", "MSK-000001")
    one = ok(worked, "ticket", "show", "MSK-000001", "--json").json()
    assert [(link["kind"], link["key"]) for link in one["links"]] == [("related", "MSK-000003")]


# --- contacts, categories, groups ---------------------------------------------------------------

def test_contact_find(worked: Path) -> None:
    card = ok(worked, "contact", "find", "8 (495) 123-45-67", "--json").json()  # any common format
    assert card["name"] == "Ivan Petrov"
    assert card["phones"] == [PHONE_IVAN_E164]
    assert card["site"] == "42"
    assert [t["key"] for t in card["open"]] == ["MSK-000001"]
    assert sorted(t["key"] for t in card["recent"]) == ["MSK-000003", "MSK-000004"]

    text = ok(worked, "contact", "find", PHONE_OLGA).stdout
    assert "Olga Smirnova" in text and "MSK-000002" in text
    assert "MSK-000001" not in text


def test_contact_find_unknown_number_exits_1(worked: Path) -> None:
    result = run(worked, "contact", "find", "+7 495 000-00-01")
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "no contact" in result.stderr
    assert "Traceback" not in result.stderr
    as_json = run(worked, "contact", "find", "+7 495 000-00-01", "--json")
    assert as_json.returncode == 1, as_json
    assert json.loads(as_json.stdout) is None


def test_category_list(blank: Path) -> None:
    categories = {c["id"]: c for c in ok(blank, "category", "list", "--json").json()}
    assert categories["vpn"]["parent"] is None and categories["vpn"]["group"] == "network"
    assert all(c["name"] for c in categories.values())
    assert categories["vpn.no_connect"]["parent"] == "vpn"
    assert categories["printing.paper_jam"]["group"] == "field_service"
    text = ok(blank, "category", "list").stdout
    assert "vpn.no_connect" in text and "VPN does not connect" in text


def test_group_list(blank: Path) -> None:
    groups = {g["id"]: g for g in ok(blank, "group", "list", "--json").json()}
    assert groups["first_line"]["line"] == 1
    assert [g for g in groups.values() if g["line"] == 1] == [groups["first_line"]]
    assert groups["network"]["requires"]["*"] == ["callback_phone"]
    assert "account_login" in groups["network"]["requires"]["vpn"]
    text = ok(blank, "group", "list").stdout
    assert text.splitlines()[0].split()[0] == "GROUP"
    assert "field_service" in text


# --- export, import, backup ---------------------------------------------------------------------

def test_export_to_file_and_stdout(worked: Path, worked_template: Template) -> None:
    target = worked.parent / "dump.jsonl"
    result = ok(worked, "export", str(target))
    assert result.stdout == ""
    assert str(target) in result.stderr
    written = target.read_text("utf-8")
    assert written == ok(worked, "export").stdout == worked_template.export
    records = [json.loads(line) for line in written.splitlines()]
    assert records[0]["type"] == "header" and records[0]["format"] == "opconsole-export"
    kinds = {r["type"] for r in records}
    assert {"operator", "event", "contact", "ticket"} <= kinds
    assert sorted(r["key"] for r in records if r["type"] == "ticket") == [
        "MSK-000001", "MSK-000002", "MSK-000003", "MSK-000004"]
    assert not list(worked.parent.glob("*.partial"))


def test_import_into_a_fresh_store_reproduces_the_export(worked: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    ok(worked, "export", str(dump))
    fresh = tmp_path / "fresh.db"
    result = ok(fresh, "import", str(dump))
    assert "imported" in result.stderr
    assert ok(fresh, "export").stdout.encode() == dump.read_bytes()

    again = ok(fresh, "import", str(dump))  # importing twice changes nothing
    assert "imported 0 records" in again.stderr
    assert export_text(fresh).encode() == dump.read_bytes()


def test_import_into_a_fresh_store_keeps_numbering_tickets_with_the_site_prefix(worked: Path,
                                                                                tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    ok(worked, "export", str(dump))
    fresh = tmp_path / "fresh.db"
    ok(fresh, "import", str(dump))
    assert ok(fresh, "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s").stdout.strip() == "MSK-000005"


def test_import_reports_malformed_lines_and_loads_the_others(worked: Path, worked_template: Template,
                                                             tmp_path: Path) -> None:
    lines = worked_template.export.splitlines()
    ticket_line = next(line for line in lines if '"type":"ticket"' in line)
    bad_ticket = json.loads(ticket_line)
    bad_ticket.update(id="bad-id", key="MSK-000777", status="on_holiday")
    mangled = lines[:2] + ["{this is not json"] + lines[2:] + [json.dumps(bad_ticket)]
    dump = tmp_path / "mangled.jsonl"
    dump.write_text("\n".join(mangled) + "\n", "utf-8")

    fresh = tmp_path / "fresh.db"
    result = run(fresh, "import", str(dump))
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert f"{dump}:3:" in result.stderr
    assert f"{dump}:{len(mangled)}:" in result.stderr
    assert export_text(fresh) == worked_template.export


def test_import_reports_a_line_that_is_not_utf8_and_loads_the_others(worked_template: Template,
                                                                     tmp_path: Path) -> None:
    lines = worked_template.export.encode("utf-8").splitlines()
    dump = tmp_path / "binary.jsonl"
    dump.write_bytes(b"\n".join(lines[:2] + [b'{"type": "\xff\xfe"}'] + lines[2:]) + b"\n")
    fresh = tmp_path / "fresh.db"
    result = run(fresh, "import", str(dump))
    assert "Traceback" not in result.stdout + result.stderr, result
    assert result.returncode == 1, result
    assert f"{dump}:3:" in result.stderr
    assert export_text(fresh) == worked_template.export


def test_backup_writes_a_usable_copy(worked: Path, tmp_path: Path) -> None:
    target = tmp_path / "backup.db"
    result = ok(worked, "backup", str(target))
    assert str(target) in result.stdout
    assert target.exists()
    original = ok(worked, "ticket", "list", "--all", "--json").json()
    copied = ok(target, "ticket", "list", "--all", "--json").json()
    assert copied == original and len(copied) == 4
    assert ok(target, "ticket", "list", "--json").json() == ok(worked, "ticket", "list", "--json").json()
    assert export_text(target) == export_text(worked)


def test_backup_refuses_to_overwrite_a_file(worked: Path, worked_template: Template, tmp_path: Path) -> None:
    target = tmp_path / "existing.db"
    target.write_bytes(b"precious bytes")
    assert_refused(run(worked, "backup", str(target)), "already exists")
    assert target.read_bytes() == b"precious bytes"
    assert_unchanged(worked, worked_template)


def test_export_to_a_missing_directory_is_refused(worked: Path, worked_template: Template,
                                                  tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "dump.jsonl"
    assert_refused(run(worked, "export", str(target)))
    assert not target.parent.exists()
    assert_unchanged(worked, worked_template)


# --- bad input: exit 2, a plain message, the store unchanged ------------------------------------

REFUSED = [
    # (id, arguments after --db, words the message must contain, is it click's usage error)
    ("show-unknown-key", ["ticket", "show", "MSK-000099"], ["MSK-000099"], False),
    ("note-unknown-key", ["ticket", "note", "MSK-000099", "hello"], ["MSK-000099"], False),
    ("take-unknown-key", ["ticket", "take", "MSK-999999"], ["MSK-999999"], False),
    ("close-not-a-key", ["ticket", "close", "garbage"], ["garbage"], False),
    ("new-unknown-category", ["ticket", "new", "--phone", "+7 495 765-43-21", "--subject", "s", "--category",
                              "vpn.nope"], ["vpn.nope"], False),
    ("classify-unknown-category", ["ticket", "classify", "MSK-000001", "--category", "nope"], ["nope"], False),
    ("classify-nothing", ["ticket", "classify", "MSK-000001"], [], False),
    ("assign-unknown-group", ["ticket", "assign", "MSK-000001", "--group", "nope"], ["nope"], False),
    ("assign-unknown-operator", ["ticket", "assign", "MSK-000001", "--to", "nobody"], ["nobody"], False),
    ("assign-both", ["ticket", "assign", "MSK-000001", "--to", OPERATOR, "--group", "network"], [], False),
    ("escalate-unknown-group", ["ticket", "escalate", "MSK-000002", "--group", "nope", "--reason", "r",
                                "--field", "account_login=x"], ["nope"], False),
    ("escalate-to-first-line", ["ticket", "escalate", "MSK-000002", "--group", "first_line", "--reason", "r"],
     ["first_line"], False),
    ("close-new", ["ticket", "close", "MSK-000001"], ["MSK-000001"], False),
    ("reopen-open", ["ticket", "reopen", "MSK-000002", "--reason", "r"], ["MSK-000002"], False),
    ("raise-not-higher", ["ticket", "raise", "MSK-000001", "--priority", "P4", "--reason", "r"],
     ["MSK-000001", "P3 already"], False),
    ("raise-closed", ["ticket", "raise", "MSK-000004", "--priority", "P1", "--reason", "r"], ["MSK-000004"], False),
    ("raise-unknown-priority", ["ticket", "raise", "MSK-000001", "--priority", "P0", "--reason", "r"], ["P0"], True),
    ("take-closed", ["ticket", "take", "MSK-000004"], ["MSK-000004", "closed"], False),
    ("note-closed", ["ticket", "note", "MSK-000004", "late note"], ["MSK-000004"], False),
    ("resolve-new", ["ticket", "resolve", "MSK-000001", "--code", "instructions"], ["MSK-000001"], False),
    ("malformed-phone-new", ["ticket", "new", "--phone", "12345", "--subject", "s"], ["12345"], False),
    ("malformed-phone-find", ["contact", "find", "not-a-phone"], ["not-a-phone"], False),
    ("unknown-resolution-code", ["ticket", "resolve", "MSK-000002", "--code", "magic"], ["magic"], False),
    ("unknown-operator-note", ["--operator", "ghost", "ticket", "note", "MSK-000001", "hi"], ["ghost"], False),
    ("unknown-operator-take", ["--operator", "ghost", "ticket", "take", "MSK-000001"], ["ghost"], False),
    ("unknown-operator-new", ["--operator", "ghost", "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s"],
     ["ghost"], False),
    ("field-without-equals", ["ticket", "escalate", "MSK-000002", "--group", "network", "--reason", "r",
                              "--field", "account_login"], ["account_login"], False),
    ("empty-subject", ["ticket", "new", "--phone", PHONE_IVAN, "--subject", "   "], ["subject"], False),
    ("link-to-itself", ["ticket", "link", "MSK-000001", "msk-1"], ["MSK-000001"], False),
    ("list-unknown-group", ["ticket", "list", "--group", "nope"], ["nope"], False),
    ("operator-unknown-group", ["operator", "add", "op2", "--group", "nope"], ["nope"], False),
    ("init-bad-prefix", ["init", "--site", "M-S K"], [], False),
    ("unknown-channel", ["ticket", "new", "--phone", PHONE_IVAN, "--subject", "s", "--channel", "fax"],
     ["fax"], True),
    ("unknown-status", ["ticket", "list", "--status", "bogus"], ["bogus"], True),
    ("missing-code", ["ticket", "resolve", "MSK-000002"], ["--code"], True),
]


@pytest.mark.parametrize(("args", "needles", "usage_error"), [case[1:] for case in REFUSED],
                         ids=[case[0] for case in REFUSED])
def test_refused(worked: Path, worked_template: Template, args: list[str], needles: list[str],
                 usage_error: bool) -> None:
    assert_refused(run(worked, *args), *needles, usage_error=usage_error)
    assert_unchanged(worked, worked_template)


def test_a_lead_raises_a_priority_and_an_operator_cannot(worked: Path, worked_template: Template) -> None:
    ok(worked, "operator", "add", "op2", "--role", "operator")
    refused = run(worked, "--operator", "op2", "ticket", "raise", "MSK-000001", "--priority", "P1", "--reason", "VIP")
    assert_refused(refused, "op2 is an operator")
    ticket = ok(worked, "ticket", "raise", "msk-1", "--priority", "P2", "--reason", "the director's printer",
                "--json").json()
    assert (ticket["priority"], ticket["impact"], ticket["urgency"]) == ("P2", "medium", "medium")
    last = ok(worked, "ticket", "show", "MSK-000001", "--json").json()["events"][-1]
    assert (last["op"], last["note"], last["actor"]) == ("ticket.prioritise", "the director's printer", OPERATOR)


def test_new_ticket_with_unknown_category_creates_no_contact(worked: Path) -> None:
    assert_refused(run(worked, "ticket", "new", "--phone", "+7 495 765-43-21", "--subject", "s",
                       "--category", "nope", "--name", "Nobody"))
    assert run(worked, "contact", "find", "+7 495 765-43-21").returncode == 1


def test_escalation_missing_fields_names_every_one(worked: Path, worked_template: Template) -> None:
    needed = required_fields(worked, "network", "vpn.no_connect")
    # callback_phone comes from the caller's card; everything else the operator must give
    missing = [name for name in needed if name != "callback_phone"]
    assert len(missing) >= 2

    result = run(worked, "ticket", "escalate", "MSK-000002", "--group", "network", "--reason", "r")
    assert_refused(result, "MSK-000002", "network", *missing)
    assert_unchanged(worked, worked_template)

    given, *still_missing = missing
    result = run(worked, "ticket", "escalate", "MSK-000002", "--group", "network", "--reason", "r",
                 "--field", f"{given}=something")
    assert_refused(result, *still_missing)
    assert f"{given} (" not in result.stderr
    assert_unchanged(worked, worked_template)

    pairs = [a for name in missing for a in ("--field", f"{name}=v")]
    done = ok(worked, "ticket", "escalate", "MSK-000002", "--group", "network", "--reason", "r", *pairs,
              "--json").json()
    assert done["status"] == "escalated"


# --- stores that are not ours (or not any more) -------------------------------------------------

def make_corrupt(path: Path, blank_template: Template) -> None:
    path.write_bytes(hashlib.sha512(b"seed").digest() * 128)  # 8 KiB of fixed pseudo-random bytes


def make_foreign(path: Path, blank_template: Template) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    conn.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    conn.commit()
    conn.close()


def make_newer(path: Path, blank_template: Template) -> None:
    shutil.copyfile(blank_template.path, path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()


BAD_STORES = {
    "corrupt": (make_corrupt, "not an opconsole store"),
    "foreign": (make_foreign, "another application"),
    "newer": (make_newer, "newer opconsole"),
}
BAD_STORE_COMMANDS = {
    "list": ["ticket", "list", "--json"],
    "new": ["ticket", "new", "--phone", PHONE_IVAN, "--subject", "s"],
    "init": ["init", "--site", "MSK"],
}


@pytest.mark.parametrize("command", list(BAD_STORE_COMMANDS))
@pytest.mark.parametrize("kind", list(BAD_STORES))
def test_unusable_store_is_refused_and_left_untouched(kind: str, command: str, blank_template: Template,
                                                      tmp_path: Path) -> None:
    make, words = BAD_STORES[kind]
    db = tmp_path / f"{kind}.db"
    make(db, blank_template)
    assert not sidecars(db)
    header = db.read_bytes()[:100]
    before = sha256(db)

    assert_refused(run(db, *BAD_STORE_COMMANDS[command]), str(db.name), words)
    assert sha256(db) == before
    assert db.read_bytes()[:100] == header  # journal mode bytes included: never switched to WAL
    assert not sidecars(db), "WAL/SHM/journal files were left next to a file that is not ours"


# --- configuration ------------------------------------------------------------------------------

def test_malformed_toml_config_names_file_and_line(worked: Path, worked_template: Template,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text('[site]\nprefix = "MSK"\nphone_region = \n', "utf-8")
    result = run(worked, "--config", str(config), "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s")
    assert_refused(result, str(config), "line 3")
    assert_unchanged(worked, worked_template)


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8"])
def test_unreadable_config_is_refused(kind: str, worked: Path, worked_template: Template, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    if kind == "directory":
        config.mkdir()
    elif kind == "not-utf8":
        config.write_bytes(b'[site]\nprefix = "\xff\xfe"\n')
    result = run(worked, "--config", str(config), "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s")
    assert_refused(result, str(config))
    assert_unchanged(worked, worked_template)


def test_invalid_config_value_is_refused(worked: Path, worked_template: Template, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[priority]\ndefault_impact = "huge"\n', "utf-8")
    result = run(worked, "--config", str(config), "ticket", "new", "--phone", PHONE_IVAN, "--subject", "s")
    assert_refused(result, str(config), "default_impact")
    assert_unchanged(worked, worked_template)


# --- startup cost -------------------------------------------------------------------------------

def test_ticket_list_json_does_not_import_textual(worked: Path) -> None:
    result = run(worked, "ticket", "list", "--json", python_flags=("-X", "importtime"))
    assert result.returncode == 0, result
    assert len(json.loads(result.stdout)) == 2
    imports = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert any("opconsole.cli" in line for line in imports), "importtime output missing; the check is void"
    assert [line for line in imports if "textual" in line] == []
