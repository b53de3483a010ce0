from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from opconsole.config import Config, load_config
from opconsole.services import Desk
from opconsole.store import Store


class FakeClock:
    """A settable clock: tests move time explicitly, never sleep."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's store, config or operator."""
    monkeypatch.delenv("OPCONSOLE_CONFIG", raising=False)
    monkeypatch.setenv("OPCONSOLE_DB", str(tmp_path / "env-default.db"))
    monkeypatch.setenv("OPCONSOLE_OPERATOR", "op1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(None)


@pytest.fixture
def clock() -> FakeClock:
    # A Monday morning in Moscow (09:30 MSK).
    return FakeClock(datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(store_path: Path):
    with Store.open(store_path, site_prefix="MSK") as opened:
        yield opened


@pytest.fixture
def desk(store: Store, config: Config, clock: FakeClock) -> Desk:
    desk = Desk(store, config, "op1", clock=clock)
    desk.ensure_first_operator()
    return desk


@pytest.fixture(scope="session")
def postgres_admin_url():
    """A PostgreSQL server: the one .ci/run started ($OPCONSOLE_TEST_POSTGRES), else a throwaway one."""
    import postgres

    given = os.environ.get("OPCONSOLE_TEST_POSTGRES")
    if given:
        yield given
        return
    if postgres.binaries() is None:
        pytest.skip("no PostgreSQL binaries on this machine (.ci/run installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="opconsole-pg-"))  # not under pytest's root-only temp folder
    url = postgres.start(folder)
    yield url
    postgres.stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def server_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty server database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    import postgres

    return postgres.fresh_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def backend(server_db_url, config):
    """The backend's own code on an empty server database of each kind."""
    from sync_support import backend_for

    backend = backend_for(server_db_url, config)
    yield backend
    backend.db.close()


@pytest.fixture
def sites(tmp_path, config, clock):
    """Two consoles' stores, at sites MSK and SPB."""
    from sync_support import open_site

    opened = [open_site(tmp_path / f"{prefix}.db", prefix, config, clock) for prefix in ("MSK", "SPB")]
    yield opened
    for site in opened:
        site.store.close()


@pytest.fixture
def sqlite_server(tmp_path):
    """`opconsole serve` on loopback with a SQLite database."""
    from sync_support import ServerProcess

    process = ServerProcess(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server.log").start()
    yield process
    process.stop()
