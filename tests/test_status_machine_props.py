"""Property tests: random action sequences against a model of the status machine, and ticket keys.

Function-scoped fixtures do not reset between hypothesis examples, so every example opens its own
store in its own temporary directory.
"""

from __future__ import annotations

import string
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test,
)

from conftest import FakeClock
from opconsole.config import Config
from opconsole.domain import format_key, parse_key, valid_prefix
from opconsole.errors import EscalationIncomplete, IllegalTransition
from opconsole.services import Desk
from opconsole.store import Store
from test_domain import ACTIONS, ALLOWED

START = datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc)  # Monday 09:30 MSK

# The model (status -> {action: next status}) is test_domain's table, written independently of
# domain.TRANSITIONS.
MODEL = ALLOWED
LEVELS = ["low", "medium", "high"]


def raw_state(store: Store, key: str) -> tuple:
    row = store.conn.execute("SELECT * FROM tickets WHERE key = ?", (key,)).fetchone()
    events = store.conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    return row, events


class DeskMachine(RuleBasedStateMachine):
    tickets = Bundle("tickets")

    def __init__(self, config: Config):
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = FakeClock(START)
        self.store = Store.open(Path(self.tmp.name) / "store.db", site_prefix="PROP")
        self.desk = Desk(self.store, config, "op1", clock=self.clock)
        self.desk.ensure_first_operator()
        self.status: dict[str, str] = {}
        self.reopens: dict[str, int] = {}
        self.changes: dict[str, int] = {}  # successful version-bearing changes after the create
        self.notes: dict[str, int] = {}

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    @initialize(target=tickets, impact=st.sampled_from(LEVELS), urgency=st.sampled_from(LEVELS))
    def first_ticket(self, impact: str, urgency: str) -> str:
        return self.register(impact, urgency)

    @precondition(lambda self: len(self.status) < 3)
    @rule(target=tickets, impact=st.sampled_from(LEVELS), urgency=st.sampled_from(LEVELS))
    def another_ticket(self, impact: str, urgency: str) -> str:
        return self.register(impact, urgency)

    def register(self, impact: str, urgency: str) -> str:
        ticket = self.desk.register(subject="Something broke", impact=impact, urgency=urgency)
        assert ticket.key == f"PROP-{len(self.status) + 1:06d}"
        self.status[ticket.key] = "new"
        self.reopens[ticket.key] = 0
        self.changes[ticket.key] = 0
        self.notes[ticket.key] = 0
        return ticket.key

    @rule(minutes=st.integers(min_value=0, max_value=3 * 24 * 60))
    def advance(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule(key=tickets, action=st.sampled_from(ACTIONS))
    def any_action(self, key: str, action: str) -> None:
        self.act(key, action)

    @rule(key=tickets, data=st.data())
    def an_allowed_action(self, key: str, data: st.DataObject) -> None:
        allowed = sorted(MODEL[self.status[key]])
        self.act(key, data.draw(st.sampled_from(allowed or ACTIONS), label="action"))

    def act(self, key: str, action: str) -> None:
        status = self.status[key]
        expected = MODEL[status].get(action)
        before = raw_state(self.store, key)
        version = self.store.ticket(key).version
        try:
            if action == "take":
                result = self.desk.take(key)
            elif action == "wait":
                result = self.desk.wait(key, "caller away")
            elif action == "escalate":
                result = self.desk.escalate(key, "network", "needs network", {"callback_phone": "+79123456789"})
            elif action == "resolve":
                result = self.desk.resolve(key, "instructions")
            elif action == "close":
                result = self.desk.close(key)
            else:
                result = self.desk.reopen(key, "came back")
        except IllegalTransition as refused:
            assert expected is None, f"{action} from {status} was refused: {refused}"
            message = str(refused)
            assert key in message
            assert f" is {status.replace('_', ' ')}" in message
            assert raw_state(self.store, key) == before
            return
        assert expected is not None, f"{action} from {status} was allowed, to {result.status}"
        assert result.status == expected
        assert result.version == version + 1
        after_events = raw_state(self.store, key)[1]
        assert len(after_events) == len(before[1]) + 1
        last = self.store.last_event_for(result.id)
        assert (last.op, last.version, last.actor) == (f"ticket.{action}", version + 1, "op1")
        assert last.changes["status"] == [status, expected]
        self.status[key] = expected
        self.changes[key] += 1
        if action == "reopen":
            self.reopens[key] += 1

    @rule(key=tickets)
    def escalate_without_fields(self, key: str) -> None:
        status = self.status[key]
        before = raw_state(self.store, key)
        expected_error = EscalationIncomplete if status == "in_progress" else IllegalTransition
        try:
            # field_service needs a site, which no ticket here ever gets (no contact, never given)
            self.desk.escalate(key, "field_service", "needs a technician")
        except (EscalationIncomplete, IllegalTransition) as refused:
            assert type(refused) is expected_error
            if expected_error is EscalationIncomplete:
                assert "site" in refused.missing
        else:
            raise AssertionError(f"escalation from {status} without a site was accepted")
        assert raw_state(self.store, key) == before

    @rule(key=tickets)
    def note(self, key: str) -> None:
        before = raw_state(self.store, key)
        try:
            self.desk.note(key, "called the caller")
        except IllegalTransition:
            assert self.status[key] == "closed"
            assert raw_state(self.store, key) == before
            return
        assert self.status[key] != "closed"
        row, events = raw_state(self.store, key)
        assert row == before[0]
        assert len(events) == len(before[1]) + 1
        self.notes[key] += 1

    @invariant()
    def tickets_match_the_model(self) -> None:
        for key, status in self.status.items():
            ticket = self.store.ticket(key)
            assert ticket.status == status
            events = self.store.events_for(ticket.id)
            versioned = [e for e in events if e.version is not None]
            assert ticket.version == len(versioned) == 1 + self.changes[key]
            assert [e.version for e in versioned] == list(range(1, ticket.version + 1))
            assert ticket.reopen_count == self.reopens[key]
            assert len([e for e in events if e.op == "ticket.note"]) == self.notes[key]
            assert all(e.op.startswith("ticket.") for e in events)
            assert ticket.is_open == (status not in ("resolved", "closed"))
            assert (ticket.waiting_since is not None) == (status == "waiting_on_caller")
            assert (ticket.resolved_at is not None) == (status in ("resolved", "closed"))
            assert (ticket.closed_at is not None) == (status == "closed")

    @invariant()
    def one_ticket_event_per_successful_change(self) -> None:
        count = self.store.conn.execute("SELECT count(*) FROM events WHERE entity = 'ticket'").fetchone()[0]
        assert count == sum(1 + self.changes[k] + self.notes[k] for k in self.status)
        bad = self.store.conn.execute(
            "SELECT count(*) FROM events WHERE entity = 'ticket' AND op NOT LIKE 'ticket.%'").fetchone()[0]
        assert bad == 0


def test_random_action_sequences_follow_the_model(config: Config):
    run_state_machine_as_test(
        lambda: DeskMachine(config),
        settings=settings(max_examples=50, stateful_step_count=40, deadline=None),
    )


# --- ticket keys ------------------------------------------------------------------------------------

PREFIXES = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIXES, number=st.integers(min_value=1, max_value=10**9 - 1))
def test_key_round_trip(prefix: str, number: int):
    key = format_key(prefix, number)
    assert key.startswith(prefix + "-")
    digits = key[len(prefix) + 1:]
    assert digits.isdigit() and len(digits) >= 6 and int(digits) == number
    assert parse_key(key) == (prefix, number)
    assert parse_key(f"  {key.lower()} ") == (prefix, number)
    assert valid_prefix(prefix.lower()) == prefix


@settings(max_examples=30, deadline=None)
@given(prefix=PREFIXES, n=st.integers(min_value=1, max_value=25))
def test_registrations_get_consecutive_distinct_keys(config: Config, prefix: str, n: int):
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(START)
        with Store.open(Path(tmp) / "store.db", site_prefix=prefix) as store:
            desk = Desk(store, config, "op1", clock=clock)
            desk.ensure_first_operator()
            keys = []
            for i in range(n):
                keys.append(desk.register(subject=f"ticket {i + 1}").key)
                clock.advance(seconds=1)
            assert keys == [f"{prefix}-{i:06d}" for i in range(1, n + 1)]
            assert len(set(keys)) == n
            for i, key in enumerate(keys, start=1):
                assert store.ticket(key).subject == f"ticket {i}"
            assert store.count_tickets() == n
