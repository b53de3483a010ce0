"""`opconsole login`, `sync --once` and `server token ...` as a user runs them, against a real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sync_support import ServerProcess
from test_cli import assert_refused, ok, run

pytestmark = pytest.mark.slow
TESTS = str(Path(__file__).parent)


@pytest.fixture
def server(sqlite_server):
    return sqlite_server


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "site.db"
    ok(path, "init", "--site", "MSK")
    return path


def keyring_env(tmp_path: Path, backend: str = "keyring_double.FileKeyring") -> dict[str, str]:
    return {"PYTHON_KEYRING_BACKEND": backend, "OPCONSOLE_TEST_KEYRING": str(tmp_path / "keyring.json"),
            "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}


def create_token(db: Path, server: ServerProcess, *args: str) -> str:
    made = ok(db, "server", "token", "create", "--db", server.db_url, *args)
    assert "it is not shown again" in made.stderr
    return made.stdout.strip()


def test_login_keeps_the_token_in_the_keyring_and_sync_uses_it(tmp_path, server, db):
    token = create_token(db, server, "--user", "op1", "--role", "operator")
    env = keyring_env(tmp_path)
    logged = ok(db, "login", server.url, env=env, stdin=token + "\n")
    assert f"logged in to {server.url} as op1 (operator); token kept in keyring_double.FileKeyring" in logged.stdout
    assert json.loads((tmp_path / "keyring.json").read_text()) == {f"opconsole {server.url}": token}
    assert token not in db.read_bytes().decode("latin-1")  # never in the store
    ok(db, "ticket", "new", "--phone", "+7 495 123-45-67", "--subject", "VPN drops", "--category", "vpn.drops")
    synced = ok(db, "sync", "--once", env=env)
    assert synced.stdout.strip() == "pushed 2 (2 applied), pulled 2, 0 waiting"
    again = ok(db, "sync", "--once", env=env)
    assert again.stdout.strip() == "pushed 0 (nothing), pulled 0, 0 waiting"


@pytest.mark.parametrize("backend, needle", [
    ("keyring.backends.fail.Keyring", "no secure keyring on this machine (found: keyring.backends.fail.Keyring)"),
    ("keyrings.alt.file.PlaintextKeyring", "found: keyrings.alt.file.PlaintextKeyring"),
])
def test_login_without_a_secure_keyring_refuses_and_stores_nothing(tmp_path, server, db, backend, needle):
    token = create_token(db, server, "--user", "op1", "--role", "operator")
    env = keyring_env(tmp_path, backend) | {"HOME": str(tmp_path)}
    refused = run(db, "login", server.url, "--token", token, env=env)
    assert_refused(refused, needle, "OPCONSOLE_TOKEN")
    assert not any(token in p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()
                   and p.suffix not in (".db", ".log") and "-wal" not in p.name)
    assert_refused(run(db, "sync", "--once", env=env), "no server to sync with")


def test_kiosk_token_from_the_environment(tmp_path, server, db):
    token = create_token(db, server, "--user", "kiosk", "--role", "operator", "--days", "1")
    env = keyring_env(tmp_path, "keyring.backends.fail.Keyring") | {"OPCONSOLE_TOKEN": token}
    logged = ok(db, "login", server.url, env=env)
    assert "OPCONSOLE_TOKEN is used; nothing stored in the keyring" in logged.stdout
    assert ok(db, "sync", "--once", env=env).stdout.startswith("pushed 0")


def test_bad_tokens_and_an_unreachable_server(tmp_path, server, db):
    env = keyring_env(tmp_path)
    assert_refused(run(db, "login", server.url, "--token", "opc_nonsense", env=env), "refused the token",
                   "unknown API token")
    assert_refused(run(db, "login", "ftp://example.org", "--token", "x", env=env), "is not a server address")
    token = create_token(db, server, "--user", "op1", "--role", "lead")
    ok(db, "login", server.url, "--token", token, env=env)
    listed = json.loads(ok(db, "server", "token", "list", "--db", server.db_url, "--json").stdout)
    ok(db, "server", "token", "revoke", "--db", server.db_url, listed[0]["id"])
    assert_refused(run(db, "sync", "--once", env=env), "refused the token", "revoked")
    assert_refused(run(db, "server", "token", "revoke", "--db", server.db_url, listed[0]["id"]), "no active token")
    server.stop()
    offline = run(db, "sync", "--once", env=env | {"OPCONSOLE_TOKEN": "whatever"})
    assert offline.returncode == 1 and "offline" in offline.stderr and "Traceback" not in offline.stderr
