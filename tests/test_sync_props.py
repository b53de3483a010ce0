"""Property: consoles that work and sync through a transport that drops requests, drops responses and
delivers requests twice all converge, once the network heals, on the server's state, with every
ticket and event exactly once everywhere."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from conftest import FakeClock
from hypothesis import HealthCheck, given, settings, strategies as st
from sync_support import InProcess, assert_exactly_once, backend_for, open_site

from opconsole.domain import Role
from opconsole.errors import OpconsoleError
from opconsole.sync.client import Offline
from opconsole.sync.ops import User

FAULTS = ("none", "none", "drop_request", "drop_response", "duplicate")
PHONES = ("+74951234567", "+78125550102", "+79161234567")


class Faulty:
    """A transport whose every call suffers the fault hypothesis drew for it."""

    def __init__(self, inner: InProcess, data: st.DataObject):
        self.inner, self.data = inner, data

    def _call(self, method: str, *args):
        fault = self.data.draw(st.sampled_from(FAULTS), label=f"{method} fault")
        if fault == "drop_request":
            raise Offline("request lost")
        answer = getattr(self.inner, method)(*args)
        if fault == "drop_response":
            raise Offline("response lost")
        if fault == "duplicate":
            answer = getattr(self.inner, method)(*args)
        return answer

    def push(self, client_id, ops):
        return self._call("push", client_id, ops)

    def changes(self, since, limit, wait, client_id, since_event=None):
        return self._call("changes", since, limit, wait, client_id, since_event)


def act(site, data: st.DataObject) -> None:
    keys = [row[0] for row in site.store.conn.execute("SELECT key FROM tickets ORDER BY key")]
    action = data.draw(st.sampled_from(["register", "take", "classify", "note", "resolve", "wait"]
                                       if keys else ["register"]), label="action")
    if action == "register":
        phone = data.draw(st.sampled_from(PHONES + (None,)), label="phone")
        site.desk.register(subject="Printer offline", phone=phone, category="printing.not_printing")
        return
    key = data.draw(st.sampled_from(keys), label="ticket")
    try:
        if action == "take":
            site.desk.take(key)
        elif action == "classify":
            site.desk.classify(key, urgency=data.draw(st.sampled_from(["low", "medium", "high"]), label="urgency"))
        elif action == "note":
            site.desk.note(key, "called back")
        elif action == "resolve":
            site.desk.resolve(key, "instructions")
        else:
            site.desk.wait(key, "waiting for a photo of the error")
    except OpconsoleError:
        pass  # not allowed in the ticket's local state: nothing was queued


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_sites_converge_through_a_faulty_network(config, data):
    clock = FakeClock(datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc))
    user = User("lead1", Role.LEAD)
    with tempfile.TemporaryDirectory() as folder:
        backend = backend_for(f"sqlite:///{Path(folder) / 'server.db'}", config)
        sites = [open_site(Path(folder) / f"{p}.db", p, config, clock) for p in ("MSK", "SPB", "EKB")]
        try:
            for _ in range(data.draw(st.integers(5, 25), label="steps")):
                site = data.draw(st.sampled_from(sites), label="site")
                clock.advance(minutes=1)
                if data.draw(st.booleans(), label="sync instead"):
                    try:
                        site.syncer(Faulty(InProcess(backend, user), data), batch=3, page=4).once()
                    except Offline:
                        pass
                else:
                    act(site, data)
            for _ in range(2):  # the network heals: everyone syncs, then everyone hears the last pushes
                for site in sites:
                    site.syncer(InProcess(backend, user)).once()
            assert_exactly_once(backend, *(site.store for site in sites))
        finally:
            for site in sites:
                site.store.close()
            backend.db.close()
