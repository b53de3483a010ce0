"""Sync through the backend's own code, in process: the outbox, push outcomes, the feed, convergence."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from opconsole.domain import Role
from opconsole.errors import InvalidInput
from opconsole.store import Store
from opconsole.sync.client import SyncLoop, status
from opconsole.sync.ops import User
from sync_support import InProcess, local_state, server_state

LEAD = User("lead1", Role.LEAD, ("first_line",))


def outbox(store):
    return [dict(zip(("seq", "name", "event_id", "acked_at"), row))
            for row in store.conn.execute("SELECT seq, name, event_id, acked_at FROM outbox ORDER BY seq")]


def test_every_change_is_queued_with_its_event_and_numbered_without_gaps(sites):
    desk = sites[0].desk
    ticket = desk.register(subject="VPN does not connect", phone="+7 916 123-45-67", category="vpn.no_connect")
    desk.take(ticket.key)
    desk.note(ticket.key, "asked for the error code")
    with pytest.raises(InvalidInput):
        desk.resolve(ticket.key, "no-such-code")  # refused: nothing written, no seq used
    desk.resolve(ticket.key, "instructions", note="reinstalled the client")
    queued = outbox(sites[0].store)
    assert [op["seq"] for op in queued] == [1, 2, 3, 4, 5]
    assert [op["name"] for op in queued] == ["contact.create", "ticket.create", "ticket.take", "ticket.note",
                                             "ticket.resolve"]
    events = {row[0] for row in sites[0].store.conn.execute("SELECT id FROM events WHERE entity != 'operator'")}
    assert {op["event_id"] for op in queued} == events


def test_two_sites_converge_and_every_event_exists_once_everywhere(sites, backend):
    msk, spb = sites
    first = msk.desk.register(subject="Printer jams", phone="+7 916 123-45-67", category="printing.paper_jam")
    msk.desk.take(first.key)
    second = spb.desk.register(subject="Cannot log in", category="accounts.password_reset")
    for site in sites:
        site.syncer(InProcess(backend, LEAD)).once()
    msk.syncer(InProcess(backend, LEAD)).once()  # msk learns what spb pushed after msk's pull
    spb.desk.note(first.key, "the caller called again")
    msk.desk.take(second.key)
    for _ in range(2):
        for site in sites:
            site.syncer(InProcess(backend, LEAD)).once()
    server_tickets, server_events = server_state(backend)
    for site in sites:
        tickets, events = local_state(site.store)
        assert tickets == server_tickets
        assert events == server_events
    assert server_tickets[second.id]["status"] == "in_progress"
    assert len(server_events) == 6  # a contact, two tickets, two takes, a note


def test_the_same_push_twice_changes_nothing(sites, backend):
    msk = sites[0]
    msk.desk.register(subject="Outlook asks for the password", category="mail.outlook_profile")
    transport = InProcess(backend, LEAD)
    ops = msk.syncer(transport).replica.pending(100)
    first = transport.push(msk.store.meta("client_id"), ops)
    again = transport.push(msk.store.meta("client_id"), ops)
    assert [r["outcome"] for r in first["results"]] == ["applied"]
    assert [r["outcome"] for r in again["results"]] == ["duplicate"]
    assert again["results"][0]["original"] == "applied"
    assert again["results"][0]["cursor"] == first["results"][0]["cursor"]
    assert backend.latest_cursor() == 1


def test_a_reused_seq_with_another_payload_is_rejected(sites, backend):
    msk = sites[0]
    msk.desk.register(subject="Outlook asks for the password", category="mail.outlook_profile")
    transport = InProcess(backend, LEAD)
    ops = msk.syncer(transport).replica.pending(100)
    transport.push(msk.store.meta("client_id"), ops)
    forged = [{**ops[0], "args": {**ops[0]["args"], "ticket": {**ops[0]["args"]["ticket"], "subject": "changed"}}}]
    answer = transport.push(msk.store.meta("client_id"), forged)
    assert answer["results"][0]["outcome"] == "rejected"
    assert "already used" in answer["results"][0]["detail"]


def test_a_gap_in_seq_stops_the_batch(sites, backend):
    msk = sites[0]
    msk.desk.register(subject="Outlook asks for the password", category="mail.outlook_profile")
    transport = InProcess(backend, LEAD)
    ops = msk.syncer(transport).replica.pending(100)
    answer = transport.push(msk.store.meta("client_id"), [{**ops[0], "seq": 3}])
    assert answer == {"results": [], "last_seq": 0, "gap": 1}


def test_concurrent_edits_of_one_field_keep_the_losing_value_visible(sites, backend):
    msk, spb = sites
    ticket = msk.desk.register(subject="Slow network at the branch", category="vpn.drops")
    for site in (msk, spb, msk):
        site.syncer(InProcess(backend, LEAD)).once()
    msk.desk.classify(ticket.key, impact="high")
    spb.desk.classify(ticket.key, impact="low", category="vpn.no_connect")
    msk_report = msk.syncer(InProcess(backend, LEAD)).once()
    spb_report = spb.syncer(InProcess(backend, LEAD)).once()
    msk.syncer(InProcess(backend, LEAD)).once()
    assert msk_report.outcomes == {"applied": 1}
    assert spb_report.outcomes == {"conflict": 1}
    for site in sites:
        local = site.store.ticket(ticket.key)
        assert (local.impact, local.category) == ("high", "vpn.no_connect")  # the field nobody else touched applies
        outcome, detail = site.store.conn.execute(
            "SELECT outcome, outcome_detail FROM events WHERE op = 'ticket.classify' AND actor = 'op1' "
            "AND outcome = 'conflict'").fetchone()
        assert json.loads(detail) == {"impact": ["high", "low"]}


def test_a_transition_from_a_status_the_server_no_longer_has_is_a_conflict(sites, backend):
    msk, spb = sites
    ticket = msk.desk.register(subject="Monitor flickers", category="workstation.peripherals")
    msk.desk.take(ticket.key)
    for site in (msk, spb):
        site.syncer(InProcess(backend, LEAD)).once()
    msk.desk.resolve(ticket.key, "instructions")
    spb.desk.wait(ticket.key, "waiting for the caller to reboot")
    msk.syncer(InProcess(backend, LEAD)).once()
    report = spb.syncer(InProcess(backend, LEAD)).once()
    assert report.outcomes == {"conflict": 1}
    assert spb.store.ticket(ticket.key).status.value == "resolved"  # the server's state replaced the lost change


def test_an_operator_sees_only_the_changes_of_their_groups(sites, backend, config):
    msk, spb = sites
    kept = msk.desk.register(subject="Printer jams", category="printing.paper_jam")
    moved = msk.desk.register(subject="Core switch down", category="network.slow")
    msk.desk.take(moved.key)
    msk.desk.escalate(moved.key, "network", "link down on the core switch",
                      fields={"site": "Moscow HQ", "affected_devices": "sw-core-1", "callback_phone": "+74951234567",
                              "speed_test": "2 Mbit/s down"})
    msk.syncer(InProcess(backend, LEAD)).once()
    network_op = User("netop", Role.OPERATOR, ("network",))
    spb.syncer(InProcess(backend, network_op)).once()
    assert {t.key for t in spb.store.tickets(limit=10)} == {moved.key}
    assert kept.key not in {row[0] for row in spb.store.conn.execute("SELECT key FROM tickets")}


def test_an_operator_may_not_assign_tickets_to_someone_else(sites, backend):
    msk = sites[0]
    ticket = msk.desk.register(subject="Printer jams", category="printing.paper_jam")
    msk.desk.add_operator("op2", "Second", "operator", [])
    msk.desk.assign(ticket.key, to="op2")
    report = msk.syncer(InProcess(backend, User("op1", Role.OPERATOR, ("first_line",)))).once()
    assert report.outcomes == {"applied": 1, "rejected": 1}
    assert msk.store.ticket(ticket.key).operator is None  # back to the server's state


WRITER = """
import sys
from opconsole.config import load_config
from opconsole.services import Desk
from opconsole.store import Store
store = Store.open(sys.argv[1], site_prefix="MSK")
desk = Desk(store, load_config(None), "op1")
desk.ensure_first_operator()
print("ready", flush=True)
n = 0
while True:
    n += 1
    ticket = desk.register(subject=f"call {n}", phone=f"+7916{1000000 + n % 300:07d}", category="vpn.drops")
    desk.take(ticket.key)
    desk.note(ticket.key, "asked for the error text")
"""


def test_a_console_killed_mid_write_leaves_every_change_with_its_event_and_operation(tmp_path):
    path = tmp_path / "killed.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with Store.open(path, create=False, quick_check=True) as store:
        conn = store.conn
        seqs = [row[0] for row in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
        assert len(seqs) > 30 and seqs == list(range(1, len(seqs) + 1))  # gap-free
        orphans = conn.execute(
            "SELECT count(*) FROM events e LEFT JOIN outbox o ON o.event_id = e.id "
            "WHERE e.entity != 'operator' AND o.seq IS NULL").fetchone()[0]
        dangling = conn.execute(
            "SELECT count(*) FROM outbox o LEFT JOIN events e ON e.id = o.event_id WHERE e.id IS NULL").fetchone()[0]
        created = conn.execute("SELECT count(*) FROM outbox WHERE name = 'ticket.create'").fetchone()[0]
        assert (orphans, dangling, created) == (0, 0, store.count_tickets())


def test_the_sync_loop_survives_a_failure_and_says_why(sites, backend):
    """A transport that breaks (here: a bug in it, once) leaves the store offline with the reason; the
    loop retries by itself and the change still arrives."""
    class BrokenOnce(InProcess):
        broken = True

        def push(self, client_id, ops):
            if BrokenOnce.broken:
                BrokenOnce.broken = False
                raise RuntimeError("cable chewed")
            return super().push(client_id, ops)

    msk = sites[0]
    loop = SyncLoop(msk.store.path, lambda: BrokenOnce(backend, User("lead1", Role.LEAD)), long_poll=0.2,
                    poll_interval=0.02)
    msk.desk.register(subject="Printer offline", category="printing.not_printing")
    loop.start()
    try:
        deadline = time.monotonic() + 10
        reasons = set()
        while status(msk.store).waiting and time.monotonic() < deadline:
            reasons.add(status(msk.store).reason)
            time.sleep(0.02)
        assert any("cable chewed" in reason for reason in reasons)
        assert status(msk.store).waiting == 0
    finally:
        loop.close()


def test_a_raised_priority_reaches_the_server_and_an_operator_cannot_raise_one(sites, backend):
    msk, spb = sites
    ticket = msk.desk.register(subject="Касса не запускается", category="pos.register_wont_start")
    msk.desk.raise_priority(ticket.key, "P1", "all registers of the store are down")
    assert msk.syncer(InProcess(backend, LEAD)).once().outcomes == {"applied": 2}
    spb.syncer(InProcess(backend, LEAD)).once()
    assert spb.store.ticket(ticket.key).priority == "P1"
    assert spb.store.ticket(ticket.key).response_due == msk.store.ticket(ticket.key).response_due
    # a console whose server account is an operator's: the server refuses the raise
    other = spb.desk.register(subject="Printer jams")
    spb.desk.raise_priority(other.key, "P2", "the director's printer")
    report = spb.syncer(InProcess(backend, User("op9", Role.OPERATOR, ("first_line",)))).once()
    assert report.outcomes == {"applied": 1, "rejected": 1}
    assert spb.store.ticket(other.key).priority == "P3"  # the server's state replaced the refused change


def test_a_raise_against_a_priority_changed_meanwhile_is_a_conflict(sites, backend):
    msk, spb = sites
    ticket = msk.desk.register(subject="Slow network at the branch", category="vpn.drops")
    for site in (msk, spb):
        site.syncer(InProcess(backend, LEAD)).once()
    msk.desk.classify(ticket.key, impact="high", urgency="high")  # P1 by the matrix
    spb.desk.raise_priority(ticket.key, "P2", "the branch manager called")
    msk.syncer(InProcess(backend, LEAD)).once()
    assert spb.syncer(InProcess(backend, LEAD)).once().outcomes == {"conflict": 1}
    assert spb.store.ticket(ticket.key).priority == "P1"
