"""The console's sync client: push the outbox, pull the change feed, over a transport.

`HttpTransport` talks to a real server with httpx; tests also drive `Syncer` through transports that
lose, repeat or refuse requests. Only one process per store syncs: `PusherLock` elects it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from opconsole.domain import now_utc, to_iso
from opconsole.errors import OpconsoleError
from opconsole.store import Store
from opconsole.sync.replica import Replica

log = logging.getLogger(__name__)

BATCH = 200
PAGE = 1000


class SyncError(OpconsoleError):
    """Sync cannot go on until someone acts (a refused token, a server that answers nonsense)."""


class Offline(OpconsoleError):
    """The server cannot be reached or asked us to come back later; sync retries by itself."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Gone(OpconsoleError):
    """The server no longer has the history after our cursor."""


class Transport(Protocol):
    def push(self, client_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]: ...

    def changes(self, since: int, limit: int, wait: float, client_id: str,
                since_event: str | None = None) -> dict[str, Any]: ...


@dataclass
class Report:
    outcomes: dict[str, int] = field(default_factory=dict)
    pulled: int = 0
    requeued: int = 0
    restarted: bool = False  # the server's history changed (a restore): the feed was read again

    @property
    def pushed(self) -> int:
        return sum(self.outcomes.values())


class Syncer:
    def __init__(self, store: Store, transport: Transport, *, batch: int = BATCH, page: int = PAGE):
        self.store = store
        self.replica = Replica(store)
        self.transport = transport
        self.batch = batch
        self.page = page
        self.client_id = store.meta("client_id") or ""

    def once(self, report: Report | None = None) -> Report:
        """Push everything waiting, then pull until the feed is drained."""
        report = report or Report()
        self.push(report)
        while self.pull(report):
            pass
        set_status(self.store, ONLINE)
        return report

    def push(self, report: Report) -> None:
        while ops := self.replica.pending(self.batch):
            answer = self.transport.push(self.client_id, ops)
            results = answer["results"]
            self.replica.record_results(results)
            for result in results:
                outcome = result.get("original") or result["outcome"]
                report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            if answer.get("gap") is not None:  # the server lost what we had sent: send it again
                report.requeued += self.replica.requeue_after(answer["gap"] - 1)
            elif not results:
                raise SyncError("the server acknowledged none of the operations sent")

    def pull(self, report: Report, wait: float = 0) -> bool:
        """One page of the feed; True if there is more to read."""
        acked = self.replica.acked_seq()  # read first: the page may predate acknowledgements recorded meanwhile
        try:
            page = self.transport.changes(self.replica.cursor, self.page, wait, self.client_id,
                                          self.replica.cursor_event)
        except Gone:
            self.replica.start_over()  # the outbox is kept: what the server lost is pushed again
            report.restarted = True
            return True
        self.replica.apply_page(page["changes"], page["cursor"], page.get("cursor_event"))
        report.pulled += len(page["changes"])
        last_seq = page.get("client_last_seq")
        if last_seq is not None and last_seq < acked:  # the server lost operations it had acknowledged
            report.requeued += self.replica.requeue_after(last_seq)
        return bool(page["has_more"])


class HttpTransport:
    """The server's HTTP API through httpx; TLS certificates are verified unless `verify` is False."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, verify: bool | str = True):
        import httpx

        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=timeout, verify=verify,
                                   headers={"Authorization": f"Bearer {token}"})

    def push(self, client_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call("POST", "/v1/push", json={"client_id": client_id, "ops": ops})

    def changes(self, since: int, limit: int, wait: float, client_id: str,
                since_event: str | None = None) -> dict[str, Any]:
        params = {"since": since, "limit": limit, "wait": wait, "client_id": client_id}
        if since_event:
            params["since_event"] = since_event
        return self._call("GET", "/v1/changes", params=params, timeout=wait + 10)

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/v1/me")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Offline(f"{self.url} cannot be reached: {exc.__class__.__name__}: {exc}") from None
        if response.status_code == 200:
            return response.json()
        reason = _reason(response)
        retry_after = _retry_after(response)
        if response.status_code in (429, 503) or response.status_code >= 500:
            raise Offline(f"{self.url} answered {response.status_code}: {reason}", retry_after)
        if response.status_code == 401:
            raise SyncError(f"{self.url} refused the token: {reason}; log in again with `opconsole login {self.url}`")
        if response.status_code == 410:
            raise Gone(reason)
        raise SyncError(f"{self.url} refused the request ({response.status_code}): {reason}")

    def close(self) -> None:
        self.client.close()


def _reason(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:200]
    return detail if isinstance(detail, str) else str(detail)[:500]


def _retry_after(response: Any) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class PusherLock:
    """Held by the one process per store that talks to the server."""

    def __init__(self, store_path: Path):
        self.path = Path(f"{store_path}-sync.lock")
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


ONLINE, OFFLINE = "online", "offline"
LONG_POLL = 20.0
STATUS_EVERY = 5.0  # seconds between rewrites of an unchanged sync state
BACKOFF = (1, 2, 5, 10, 30, 60)


class SyncLoop:
    """Background sync for one store: a pusher thread that sends local changes as soon as they are
    committed (by any terminal on the store), and a puller thread that long-polls the change feed.
    Each has its own store connection. A failure never stops them: they retry with backoff.
    The state goes into the store's meta, so every terminal on the store can show it."""

    def __init__(self, store_path: Path, connect: Callable[[], Transport], *, long_poll: float = LONG_POLL,
                 poll_interval: float = 0.05):
        self.store_path = store_path
        self.connect = connect  # a new transport; called again after the server refused the token
        self.long_poll = long_poll
        self.poll_interval = poll_interval
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.error: str | None = None  # the last error that needs a person (a refused token)
        self._failing: dict[str, str] = {}  # thread name -> why its last attempt failed
        self._lock = threading.Lock()
        self._seen_version: int | None = None
        self._behind = True
        self._written: tuple[str, str] | None = None
        self._written_at = 0.0

    def start(self) -> None:
        for name, target in (("sync-push", self._push), ("sync-pull", self._pull)):
            thread = threading.Thread(target=self._guarded, args=(name, target), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def close(self, timeout: float = 2.0) -> None:
        """Stop both threads; a long-poll in flight is left to end on its own (the threads are daemons)."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)

    def _guarded(self, name: str, step: Callable[[Syncer], bool]) -> None:
        store = Store.open(self.store_path, create=False)
        syncer, failures = None, 0
        try:
            while not self.stop.is_set():
                try:
                    if syncer is None:  # again after a refusal: takes a token given meanwhile
                        syncer = Syncer(store, self.connect())
                    if step(syncer):
                        failures = 0
                        self._report(store, name, None)
                except Exception as exc:  # offline, a refused token, no token, a busy store, or a bug
                    if not isinstance(exc, OpconsoleError):
                        log.exception("sync failed")
                        exc = SyncError(f"sync failed: {exc.__class__.__name__}: {exc}")
                    failures += 1
                    self._report(store, name, str(exc))
                    if not isinstance(exc, Offline):
                        self.error = str(exc)
                        syncer = None
                    retry = getattr(exc, "retry_after", None)
                    self.stop.wait(retry or BACKOFF[min(failures, len(BACKOFF)) - 1])
        finally:
            store.close()

    def _report(self, store: Store, name: str, failure: str | None) -> None:
        """Offline while either thread's last attempt failed. Written when the state changes, and at most
        every few seconds while it holds, so an idle desk's store is not rewritten on every poll."""
        with self._lock:
            if failure is None:
                self._failing.pop(name, None)
            else:
                self._failing[name] = failure
            reason = next(iter(self._failing.values()), "")
            state = (OFFLINE if reason else ONLINE, reason)
            if state == self._written and time.monotonic() - self._written_at < STATUS_EVERY:
                return
            self._written, self._written_at = state, time.monotonic()
        set_status(store, *state)

    def _push(self, syncer: Syncer) -> bool:
        """Push when a commit may have queued something; else look again in `poll_interval`."""
        self.stop.wait(self.poll_interval)
        version = syncer.store.data_version()
        pushed = version != self._seen_version and syncer.replica.pending_count() > 0
        if pushed:
            syncer.push(Report())
        self._seen_version = version
        return pushed

    def _pull(self, syncer: Syncer) -> bool:
        """Catch up without waiting, then wait on the feed (one long-poll per step)."""
        if self._behind:
            while syncer.pull(Report()):
                pass
            self._behind = False
        else:
            self._behind = syncer.pull(Report(), wait=self.long_poll)
        return True


def set_status(store: Store, state: str, reason: str = "") -> None:
    """The sync state every terminal on the store shows; the time is written on every success."""
    with store.write():
        store.set_meta("sync_state", state)
        store.set_meta("sync_reason", reason)
        if state == ONLINE:
            store.set_meta("sync_last_at", to_iso(now_utc()) or "")


@dataclass(frozen=True)
class Status:
    server: str | None  # the server this store logged in to; None for a store that never syncs
    state: str  # online, offline, or "" before the first attempt
    reason: str
    waiting: int  # operations not yet acknowledged by the server
    last_at: str | None  # the last time the server answered
    lost: int  # this store's operations the server took only in part (conflict) or not at all (rejected)


def status(store: Store) -> Status:
    replica = Replica(store)
    return Status(store.meta("server_url"), store.meta("sync_state", "") or "", store.meta("sync_reason", "") or "",
                  replica.pending_count(), store.meta("sync_last_at") or None, replica.lost_count())
