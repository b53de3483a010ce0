"""Commands for backend mode: `serve`, `server token ...`, `login` and `sync`."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from opconsole.cli import Group, Refused, Session, cli, emit_json, pass_session, table
from opconsole.errors import InvalidInput

ROLES = ["operator", "lead", "admin"]
DB_HELP = "The server's database: sqlite:///PATH or postgresql://… (default: $OPCONSOLE_SERVER_DB, else a file " \
          "in the user data directory)."


def server_url_option(function: Any) -> Any:
    return click.option("--db", "url", metavar="URL", envvar="OPCONSOLE_SERVER_DB", help=DB_HELP)(function)


def open_backend(session: Session, url: str | None):
    from opconsole.server.db import Database
    from opconsole.server.service import Backend

    if not url:
        from platformdirs import user_data_path

        folder = user_data_path("opconsole", appauthor=False)
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'server.db'}"
    db = Database.open(url)
    session.closers.append(db.close)
    db.create_schema()
    return Backend(db, session.config)


@click.command()
@server_url_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--rate", type=click.FloatRange(0.1), default=50.0, show_default=True,
              help="Requests a second each token may make on average; beyond it, 429 with Retry-After.")
@click.option("--max-ops", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Operations one push may carry; beyond it, 413.")
@pass_session
def serve(session: Session, url: str | None, host: str, port: int, rate: float, max_ops: int) -> None:
    """Run the backend: the HTTP API consoles sync with (needs the `server` extra)."""
    try:
        import uvicorn

        from opconsole.server.api import Limits, create_app
    except ImportError as exc:
        raise Refused(f"the server needs its extra: pip install 'opconsole[server]' ({exc.name} is missing)") from None
    backend = open_backend(session, url)
    app = create_app(backend, Limits(max_ops=max_ops, rate=rate, burst=max(int(rate * 4), 1)))
    click.echo(f"opconsole server on http://{host}:{port} ({backend.db.kind}); API description at /docs", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


@click.group(cls=Group)
def server() -> None:
    """Administer the backend."""


@server.group(cls=Group)
def token() -> None:
    """API tokens: one per user, shown once, stored hashed."""


@token.command("create")
@server_url_option
@click.option("--user", "login", required=True, metavar="LOGIN")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--group", "groups", multiple=True, metavar="GROUP",
              help="Groups whose tickets an operator sees and works (repeat; default: first line).")
@click.option("--name", help="The user's full name.")
@click.option("--days", type=click.IntRange(0, 3650), default=90, show_default=True,
              help="Days until the token expires; 0 for never.")
@pass_session
def token_create(session: Session, url: str | None, login: str, role: str, groups: tuple[str, ...],
                 name: str | None, days: int) -> None:
    """Create a user's token and print it: it is shown this once."""
    backend = open_backend(session, url)
    token_id, secret = backend.create_token(login, role, list(groups), days or None, name)
    click.echo(secret)
    expiry = f"expires in {days} days" if days else "never expires"
    click.echo(f"token {token_id} for {login} ({role}), {expiry}; it is not shown again", err=True)


@token.command("revoke")
@server_url_option
@click.argument("token_id", required=False)
@click.option("--user", "login", metavar="LOGIN", help="Revoke every token of this user.")
@pass_session
def token_revoke(session: Session, url: str | None, token_id: str | None, login: str | None) -> None:
    """Revoke a token (by its id) or all of a user's tokens; they stop working at once."""
    if bool(token_id) == bool(login):
        raise InvalidInput("give a token id or --user LOGIN, not both")
    count = open_backend(session, url).revoke(token_id, login)
    if not count:
        raise InvalidInput(f"no active token {'of ' + login if login else token_id}")
    click.echo(f"revoked {count} token{'s' if count > 1 else ''}")


@token.command("list")
@server_url_option
@click.option("--json", "as_json", is_flag=True)
@pass_session
def token_list(session: Session, url: str | None, as_json: bool) -> None:
    tokens = open_backend(session, url).tokens()
    if as_json:
        emit_json(tokens)
        return
    table(([t["id"], t["login"], t["role"], t["created_at"], t["expires_at"] or "never",
            t["revoked_at"] or ""] for t in tokens), ["ID", "USER", "ROLE", "CREATED", "EXPIRES", "REVOKED"])


server.add_command(token)


@click.command()
@click.argument("url")
@click.option("--token", "given", metavar="TOKEN", help="The token (default: asked for, or read from stdin).")
@pass_session
def login(session: Session, url: str, given: str | None) -> None:
    """Log this store in to the server at URL: the token is checked there and kept in the OS keyring."""
    from opconsole.sync.client import HttpTransport, Offline
    from opconsole.sync.credentials import save_token

    url = check_url(url)
    from_env = os.environ.get("OPCONSOLE_TOKEN", "").strip()
    secret = (given or from_env or read_token()).strip()
    transport = HttpTransport(url, secret)
    try:
        me = transport.me()
    except Offline as exc:
        raise Refused(f"{exc}; nothing was stored") from None
    finally:
        transport.close()
    where = "OPCONSOLE_TOKEN is used; nothing stored in the keyring" if secret == from_env and not given \
        else f"token kept in {save_token(url, secret)}"
    store = session.store()
    with store.write():
        store.set_meta("server_url", url)
    click.echo(f"logged in to {url} as {me['login']} ({me['role']}); {where}")


def read_token() -> str:
    if sys.stdin.isatty():
        return click.prompt("API token", hide_input=True)
    line = sys.stdin.readline()
    if not line.strip():
        raise InvalidInput("no token: give --token, type it when asked, or pipe it on stdin")
    return line


def check_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{url!r} is not a server address like https://desk.example.org")
    return url.rstrip("/")


@click.command()
@click.option("--server", "url", metavar="URL", envvar="OPCONSOLE_SERVER",
              help="The server (default: $OPCONSOLE_SERVER, else the one `login` chose).")
@click.option("--once", is_flag=True, help="Push what waits, pull what is new, and exit.")
@click.option("--lock-wait", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Seconds to wait while another process on this store is syncing.")
@pass_session
def sync(session: Session, url: str | None, once: bool, lock_wait: float) -> None:
    """Sync this store with the server (token from $OPCONSOLE_TOKEN or the keyring)."""
    from opconsole.sync.client import HttpTransport, Offline, PusherLock, Syncer, SyncLoop, status
    from opconsole.sync.credentials import token_for

    store = session.store()
    url = url or store.meta("server_url")
    if not url:
        raise InvalidInput("no server to sync with: run `opconsole login URL` first, or give --server URL")
    url = check_url(url)
    token = token_for(url)  # before waiting for the lock: a missing token is refused at once
    lock = PusherLock(store.path)
    deadline = time.monotonic() + lock_wait
    while not lock.acquire():
        if time.monotonic() >= deadline:
            click.echo(f"another opconsole process is syncing {store.path}; it sends the "
                       f"{status(store).waiting} waiting changes", err=True)
            sys.exit(1)
        time.sleep(0.2)
    session.closers.append(lock.release)
    if not once:
        loop = SyncLoop(store.path, lambda: HttpTransport(url, token_for(url)))
        loop.start()
        click.echo(f"syncing {store.path} with {url}; Ctrl-C stops", err=True)
        try:
            while not loop.stop.wait(1):
                pass
        finally:
            loop.close()
        return
    transport = HttpTransport(url, token)
    session.closers.append(transport.close)
    try:
        report = Syncer(store, transport).once()
    except Offline as exc:
        click.echo(f"opconsole: offline: {exc}; {status(store).waiting} changes wait in the outbox", err=True)
        sys.exit(1)
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(report.outcomes.items())) or "nothing"
    click.echo(f"pushed {report.pushed} ({outcomes}), pulled {report.pulled}, {status(store).waiting} waiting")


for command in (serve, server, login, sync):
    cli.add_command(command)
