"""The ticket domain through the Desk: status machine, priority, escalation, phones, SLA fields, events.

Every expectation here is written out by hand; nothing is derived from the code under test
(in particular not from domain.TRANSITIONS).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from opconsole import domain
from opconsole.config import Config, load_config
from opconsole.errors import (
    ConfigError, Conflict, EscalationIncomplete, IllegalTransition, InvalidInput, PermissionDenied,
)
from opconsole.services import Desk
from opconsole.store import Store

KEY = "MSK-000001"  # the first ticket of the fresh MSK store of every test
PHONE = "+79123456789"
ESCALATE_TO = "network"  # a ticket without a category needs only callback_phone there
ESCALATE_FIELDS = {"callback_phone": PHONE}

# --- helpers --------------------------------------------------------------------------------------


def ticket_row(store: Store, key: str = KEY) -> dict[str, Any]:
    cursor = store.conn.execute("SELECT * FROM tickets WHERE key = ?", (key,))
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    assert row is not None, f"no ticket {key}"
    return dict(zip(names, row))


def all_events(store: Store) -> list[tuple]:
    return store.conn.execute("SELECT * FROM events ORDER BY seq").fetchall()


def counters(store: Store) -> list[tuple]:
    return store.conn.execute("SELECT * FROM counters ORDER BY name").fetchall()


def ticket_events(desk: Desk, key: str = KEY):
    return desk.history(key)


def register(desk: Desk, **kwargs: Any) -> str:
    kwargs.setdefault("subject", "Printer on floor 3 does not print")
    return desk.register(**kwargs).key


def bring_to(desk: Desk, status: str) -> str:
    """Register a ticket and drive it into `status` through allowed actions only."""
    key = register(desk)
    if status == "new":
        return key
    desk.take(key)
    if status == "in_progress":
        return key
    if status == "waiting_on_caller":
        desk.wait(key, "caller will call back")
        return key
    if status == "escalated":
        desk.escalate(key, ESCALATE_TO, "needs network operations", dict(ESCALATE_FIELDS))
        return key
    desk.resolve(key, "instructions", "explained the settings")
    if status == "resolved":
        return key
    assert status == "closed"
    desk.close(key)
    return key


def perform(desk: Desk, key: str, action: str):
    """Run `action` with otherwise valid arguments, so that only the status can refuse it."""
    if action == "take":
        return desk.take(key)
    if action == "wait":
        return desk.wait(key, "waiting for the caller")
    if action == "escalate":
        return desk.escalate(key, ESCALATE_TO, "needs network operations", dict(ESCALATE_FIELDS))
    if action == "resolve":
        return desk.resolve(key, "instructions", "done")
    if action == "close":
        return desk.close(key)
    if action == "reopen":
        return desk.reopen(key, "the problem is back")
    raise AssertionError(action)


# --- the status machine -----------------------------------------------------------------------------

STATUSES = ["new", "in_progress", "waiting_on_caller", "escalated", "resolved", "closed"]
ACTIONS = ["take", "wait", "escalate", "resolve", "close", "reopen"]

# status -> {action: resulting status}: the service-desk process, written out independently.
ALLOWED = {
    "new": {"take": "in_progress"},
    "in_progress": {"wait": "waiting_on_caller", "escalate": "escalated", "resolve": "resolved"},
    "waiting_on_caller": {"take": "in_progress"},
    "escalated": {"take": "in_progress", "resolve": "resolved"},
    "resolved": {"close": "closed", "reopen": "in_progress"},
    "closed": {},
}

_CLOSED = "ticket MSK-000001 is closed; a closed ticket is final, it cannot be {}: register a new one and link it"

# (status, action) -> the complete message an operator reads when the action is refused
REFUSED = {
    ("new", "wait"): "ticket MSK-000001 is new; take it first, it cannot be put on waiting",
    ("new", "escalate"): "ticket MSK-000001 is new; take it first, it cannot be escalated",
    ("new", "resolve"): "ticket MSK-000001 is new; take it first, it cannot be resolved",
    ("new", "close"): "ticket MSK-000001 is new; take it and resolve it first, it cannot be closed",
    ("new", "reopen"): "ticket MSK-000001 is new; it is still open, it cannot be reopened",
    ("in_progress", "take"): "ticket MSK-000001 is in progress with op1 already; assign it to take it over",
    ("in_progress", "close"): "ticket MSK-000001 is in progress; resolve it first, it cannot be closed",
    ("in_progress", "reopen"): "ticket MSK-000001 is in progress; it is still open, it cannot be reopened",
    ("waiting_on_caller", "wait"): "ticket MSK-000001 is waiting on caller; take it first, it cannot be put on waiting",
    ("waiting_on_caller", "escalate"): "ticket MSK-000001 is waiting on caller; take it first, it cannot be escalated",
    ("waiting_on_caller", "resolve"): "ticket MSK-000001 is waiting on caller; take it first, it cannot be resolved",
    ("waiting_on_caller", "close"):
        "ticket MSK-000001 is waiting on caller; take it and resolve it first, it cannot be closed",
    ("waiting_on_caller", "reopen"): "ticket MSK-000001 is waiting on caller; it is still open, it cannot be reopened",
    ("escalated", "wait"): "ticket MSK-000001 is escalated; take it first, it cannot be put on waiting",
    ("escalated", "escalate"): "ticket MSK-000001 is escalated; take it first, it cannot be escalated",
    ("escalated", "close"): "ticket MSK-000001 is escalated; resolve it first, it cannot be closed",
    ("escalated", "reopen"): "ticket MSK-000001 is escalated; it is still open, it cannot be reopened",
    # Reopening puts a resolved ticket back in progress, which is what taking it would achieve.
    ("resolved", "take"): "ticket MSK-000001 is resolved; reopen it first, it cannot be taken",
    ("resolved", "wait"): "ticket MSK-000001 is resolved; reopen it first, it cannot be put on waiting",
    ("resolved", "escalate"): "ticket MSK-000001 is resolved; reopen it first, it cannot be escalated",
    ("resolved", "resolve"): "ticket MSK-000001 is resolved; reopen it first, it cannot be resolved",
    ("closed", "take"): _CLOSED.format("taken"),
    ("closed", "wait"): _CLOSED.format("put on waiting"),
    ("closed", "escalate"): _CLOSED.format("escalated"),
    ("closed", "resolve"): _CLOSED.format("resolved"),
    ("closed", "close"): _CLOSED.format("closed"),
    ("closed", "reopen"): _CLOSED.format("reopened"),
}


def test_the_tables_cover_the_whole_grid_exactly_once():
    allowed = {(s, a) for s, actions in ALLOWED.items() for a in actions}
    assert len(allowed) == 9
    assert len(REFUSED) == 27
    assert allowed.isdisjoint(REFUSED)
    assert allowed | set(REFUSED) == {(s, a) for s in STATUSES for a in ACTIONS}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_status_action_grid(desk: Desk, store: Store, clock, status: str, action: str):
    key = bring_to(desk, status)
    assert desk.ticket(key).status == status
    clock.advance(minutes=5)
    row_before, events_before, counters_before = ticket_row(store, key), all_events(store), counters(store)

    if (status, action) in REFUSED:
        with pytest.raises(IllegalTransition) as refused:
            perform(desk, key, action)
        assert str(refused.value) == REFUSED[(status, action)]
        assert ticket_row(store, key) == row_before
        assert all_events(store) == events_before
        assert counters(store) == counters_before
    else:
        after = perform(desk, key, action)
        expected = ALLOWED[status][action]
        assert after.status == expected
        assert desk.ticket(key).status == expected
        assert desk.ticket(key).version == row_before["version"] + 1
        new_events = all_events(store)[len(events_before):]
        assert len(new_events) == 1
        last = ticket_events(desk, key)[-1]
        assert last.op == f"ticket.{action}"
        assert last.changes["status"] == [status, expected]


def test_refused_take_names_the_operator_who_has_it(desk: Desk, store: Store):
    desk.add_operator("op2", "Second Operator", "operator", [])
    key = bring_to(desk, "in_progress")
    other = Desk(store, desk.config, "op2", clock=desk.clock)
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(IllegalTransition) as refused:
        other.take(key)
    assert str(refused.value) == "ticket MSK-000001 is in progress with op1 already; assign it to take it over"
    assert (ticket_row(store, key), all_events(store)) == before


# --- allowed transitions, one by one ----------------------------------------------------------------


def test_take_from_new_starts_work_and_records_the_first_response(desk: Desk, clock):
    key = register(desk)
    clock.advance(minutes=5)
    ticket = desk.take(key)
    assert ticket.status == "in_progress"
    assert ticket.operator == "op1"
    assert ticket.first_response_at == datetime(2026, 11, 23, 6, 35, tzinfo=timezone.utc)
    assert ticket.version == 2
    assert desk.ticket(key) == ticket


def test_wait_then_take_again(desk: Desk, clock):
    key = bring_to(desk, "in_progress")
    clock.advance(minutes=10)
    waiting = desk.wait(key, "caller is away from the desk")
    assert waiting.status == "waiting_on_caller"
    assert waiting.waiting_since == datetime(2026, 11, 23, 6, 40, tzinfo=timezone.utc)
    assert waiting.wait_count == 1
    clock.advance(minutes=20)
    back = desk.take(key)
    assert back.status == "in_progress"
    assert back.waiting_since is None
    assert back.wait_count == 1
    assert back.operator == "op1"
    assert back.first_response_at == datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc)  # not moved


def test_escalated_ticket_taken_back_returns_to_first_line(desk: Desk, clock):
    key = bring_to(desk, "escalated")
    escalated = desk.ticket(key)
    assert (escalated.status, escalated.group_id, escalated.operator) == ("escalated", "network", None)
    clock.advance(minutes=15)
    back = desk.take(key)
    assert (back.status, back.group_id, back.operator) == ("in_progress", "first_line", "op1")
    assert back.escalation_count == 1


def test_escalated_ticket_can_be_resolved(desk: Desk, clock):
    key = bring_to(desk, "escalated")
    clock.advance(hours=2)
    resolved = desk.resolve(key, "escalated_resolved", "  replaced the switch  ")
    assert resolved.status == "resolved"
    assert resolved.resolved_at == datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
    assert resolved.resolution_code == "escalated_resolved"
    assert resolved.resolution_note == "replaced the switch"


def test_resolve_then_close(desk: Desk, clock):
    key = bring_to(desk, "in_progress")
    clock.advance(minutes=7)
    resolved = desk.resolve(key, "restarted")
    assert resolved.status == "resolved"
    assert resolved.resolved_at == datetime(2026, 11, 23, 6, 37, tzinfo=timezone.utc)
    assert resolved.resolution_note is None
    clock.advance(days=1)
    closed = desk.close(key)
    assert closed.status == "closed"
    assert closed.closed_at == datetime(2026, 11, 24, 6, 37, tzinfo=timezone.utc)
    assert closed.resolved_at == datetime(2026, 11, 23, 6, 37, tzinfo=timezone.utc)


def test_reopen_goes_back_to_in_progress_and_counts(desk: Desk, clock):
    key = bring_to(desk, "resolved")
    clock.advance(hours=1)
    reopened = desk.reopen(key, "still does not print")
    assert reopened.status == "in_progress"
    assert reopened.reopen_count == 1
    assert (reopened.resolved_at, reopened.resolution_code, reopened.resolution_note) == (None, None, None)
    desk.resolve(key, "replaced_equipment")
    again = desk.reopen(key, "and again")
    assert again.reopen_count == 2
    assert desk.ticket(key).reopen_count == 2
    assert [e.note for e in ticket_events(desk, key) if e.op == "ticket.reopen"] == [
        "still does not print", "and again"]


def test_unknown_resolution_code_is_refused_and_nothing_written(desk: Desk, store: Store):
    key = bring_to(desk, "in_progress")
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(InvalidInput, match="unknown resolution code 'fixed_it'"):
        desk.resolve(key, "fixed_it")
    assert (ticket_row(store, key), all_events(store)) == before


def test_reopen_needs_a_reason(desk: Desk, store: Store):
    key = bring_to(desk, "resolved")
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(InvalidInput, match="reopen reason must not be empty"):
        desk.reopen(key, "   ")
    assert (ticket_row(store, key), all_events(store)) == before


# --- priority matrix ---------------------------------------------------------------------------------

ITIL_MATRIX = [
    ("high", "high", "P1"), ("high", "medium", "P2"), ("medium", "high", "P2"),
    ("high", "low", "P3"), ("medium", "medium", "P3"), ("low", "high", "P3"),
    ("medium", "low", "P4"), ("low", "medium", "P4"), ("low", "low", "P4"),
]


@pytest.mark.parametrize("impact, urgency, priority", ITIL_MATRIX)
def test_default_priority_matrix(config: Config, desk: Desk, impact: str, urgency: str, priority: str):
    assert config.priority(impact, urgency) == priority
    ticket = desk.register(subject="Something is broken", impact=impact, urgency=urgency)
    assert ticket.priority == priority
    assert desk.ticket(ticket.key).priority == priority


def test_default_impact_and_urgency_are_medium_so_p3(desk: Desk):
    ticket = desk.register(subject="Mouse is sluggish")
    assert (ticket.impact, ticket.urgency, ticket.priority) == ("medium", "medium", "P3")


def test_matrix_override_from_a_config_file(tmp_path: Path, store: Store, clock):
    path = tmp_path / "override.toml"
    path.write_text('[priority.matrix]\nhigh = { high = "P2" }\nlow = { low = "P3" }\n', "utf-8")
    overridden = load_config(path)
    assert overridden.priority("high", "high") == "P2"
    assert overridden.priority("low", "low") == "P3"
    # the rest of the matrix keeps the defaults (tables merge key by key)
    assert overridden.priority("high", "medium") == "P2"
    assert overridden.priority("low", "medium") == "P4"
    assert overridden.priority("medium", "medium") == "P3"
    desk = Desk(store, overridden, "op1", clock=clock)
    desk.ensure_first_operator()
    ticket = desk.register(subject="Whole store offline", impact="high", urgency="high")
    assert ticket.priority == "P2"
    # P2: 30 min response, 480 min resolution, 24x7, from Monday 06:30 UTC
    assert ticket.response_due == datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
    assert ticket.resolution_due == datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc)


def test_matrix_override_with_unknown_priority_is_a_config_error(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[priority.matrix]\nlow = { low = "P9" }\n', "utf-8")
    with pytest.raises(ConfigError, match="P9"):
        load_config(path)


def test_unknown_level_is_refused(desk: Desk, store: Store):
    with pytest.raises(InvalidInput, match="impact 'severe' is not one of: low, medium, high"):
        desk.register(subject="x", impact="severe")
    assert store.count_tickets() == 0


# --- escalation --------------------------------------------------------------------------------------


def test_escalation_lists_every_missing_field_at_once_and_writes_nothing(desk: Desk, store: Store):
    key = register(desk, category="network.site_down")
    desk.take(key)
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(EscalationIncomplete) as refused:
        desk.escalate(key, "network", "the whole store is offline")
    assert refused.value.missing == [
        "callback_phone", "site", "affected_devices", "provider_status", "equipment_lights"]
    assert str(refused.value) == (
        "ticket MSK-000001 cannot be escalated to network: missing callback_phone (Callback phone), "
        "site (Site / store number), affected_devices (Affected devices (all / some / one)), "
        "provider_status (ISP checked (account balance, outage notice)), "
        "equipment_lights (Router / modem indicator lights); give them with --field NAME=VALUE"
    )
    assert (ticket_row(store, key), all_events(store)) == before
    assert desk.ticket(key).status == "in_progress"


def test_escalation_blank_values_count_as_missing(desk: Desk, store: Store):
    key = register(desk, category="network.site_down")
    desk.take(key)
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(EscalationIncomplete) as refused:
        desk.escalate(key, "network", "offline", {"site": "Store 17", "affected_devices": "all",
                                                   "provider_status": "   "})
    assert refused.value.missing == ["callback_phone", "provider_status", "equipment_lights"]
    assert (ticket_row(store, key), all_events(store)) == before


def test_escalation_with_every_field_given(desk: Desk, store: Store, clock):
    key = register(desk, category="network.site_down")
    desk.take(key)
    clock.advance(minutes=12)
    given = {"callback_phone": PHONE, "site": "Store 17", "affected_devices": " all ",
             "provider_status": "balance ok, no outage notice", "equipment_lights": "WAN light off"}
    escalated = desk.escalate(key, "network", "the whole store is offline", given)
    stored = desk.ticket(key)
    assert stored == escalated
    assert stored.status == "escalated"
    assert stored.group_id == "network"
    assert stored.operator is None
    assert stored.escalation_count == 1
    assert stored.fields == {"callback_phone": PHONE, "site": "Store 17", "affected_devices": "all",
                             "provider_status": "balance ok, no outage notice",
                             "equipment_lights": "WAN light off"}
    last = ticket_events(desk, key)[-1]
    assert last.op == "ticket.escalate"
    assert last.note == "the whole store is offline"
    assert last.changes["group_id"] == ["first_line", "network"]
    assert last.changes["operator"] == ["op1", None]
    assert last.changes["escalation_count"] == [0, 1]


@pytest.mark.parametrize("group, message", [
    ("first_line", "first_line is first line itself; escalate to a second- or third-line group"),
    ("nowhere", "unknown group 'nowhere'; `opconsole group list` shows them"),
])
def test_escalation_to_first_line_or_unknown_group_is_refused(desk: Desk, store: Store, group: str, message: str):
    key = bring_to(desk, "in_progress")
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(InvalidInput) as refused:
        desk.escalate(key, group, "please help", dict(ESCALATE_FIELDS))
    assert str(refused.value) == message
    assert (ticket_row(store, key), all_events(store)) == before


def test_escalation_prefills_site_and_callback_phone_from_the_contact(desk: Desk, store: Store):
    key = register(desk, category="pos.card_terminal", phone="8 (912) 345-67-89", site="Store 17",
                   contact_name="Anna")
    desk.take(key)
    with pytest.raises(EscalationIncomplete) as refused:
        desk.escalate(key, "pos_vendor", "terminal rejects cards")
    assert refused.value.missing == ["register_number", "error_text", "fiscal_storage_state", "terminal_id"]
    escalated = desk.escalate(key, "pos_vendor", "terminal rejects cards", {
        "register_number": "2", "error_text": "E-105", "fiscal_storage_state": "ok", "terminal_id": "T-99"})
    assert escalated.fields == {"site": "Store 17", "callback_phone": PHONE, "register_number": "2",
                                "error_text": "E-105", "fiscal_storage_state": "ok", "terminal_id": "T-99"}
    assert desk.ticket(key).fields == escalated.fields


def test_escalation_given_values_win_over_the_contact(desk: Desk):
    key = register(desk, phone="9123456789", site="Store 17")
    desk.take(key)
    escalated = desk.escalate(key, "field_service", "needs a technician",
                              {"callback_phone": "+79990001122", "site": "Store 18 (temporary)"})
    assert escalated.fields == {"callback_phone": "+79990001122", "site": "Store 18 (temporary)"}


# --- phone numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "8 (912) 345-67-89", "+7 912 345 67 89", "9123456789", "89123456789", "+7(912)345-67-89",
    " 8-912-345-67-89 ", "+79123456789",
])
def test_russian_phone_formats_normalise_to_e164(raw: str):
    assert domain.normalise_phone(raw, "RU") == "+79123456789"


@pytest.mark.parametrize("raw", ["12345", "8 912 345 67", "not a phone", "", "+7 912"])
def test_invalid_phones_are_refused(raw: str):
    with pytest.raises(InvalidInput) as refused:
        domain.normalise_phone(raw, "RU")
    assert repr(raw) in str(refused.value)
    assert "RU" in str(refused.value)


def test_contact_is_found_by_any_format_of_its_number(desk: Desk):
    first = desk.register(subject="VPN", phone="8 (912) 345-67-89", contact_name="Anna")
    second = desk.register(subject="Mail", phone="9123456789")
    assert first.contact_id is not None
    assert second.contact_id == first.contact_id
    card = desk.find_contact("+7 912 345 67 89")
    assert card is not None
    assert card.contact.phones == ["+79123456789"]
    assert card.contact.name == "Anna"
    assert sorted(t.key for t in card.open) == ["MSK-000001", "MSK-000002"]


def test_invalid_phone_on_registration_writes_nothing_and_uses_no_number(desk: Desk, store: Store):
    events_before = all_events(store)
    with pytest.raises(InvalidInput):
        desk.register(subject="VPN", phone="12345")
    assert store.count_tickets() == 0
    assert all_events(store) == events_before
    assert desk.register(subject="VPN").key == "MSK-000001"


def test_phone_region_from_config(tmp_path: Path, store: Store, clock):
    path = tmp_path / "by.toml"
    path.write_text('[site]\nphone_region = "by"\n', "utf-8")
    belarus = load_config(path)
    assert belarus.phone_region == "BY"
    assert domain.normalise_phone("8 029 123-45-67", belarus.phone_region) == "+375291234567"
    # a +country code is read as given whatever the region
    assert domain.normalise_phone("+7 912 345 67 89", belarus.phone_region) == "+79123456789"
    desk = Desk(store, belarus, "op1", clock=clock)
    desk.ensure_first_operator()
    ticket = desk.register(subject="Register frozen", phone="029 123-45-67")
    assert store.contact(ticket.contact_id).phones == ["+375291234567"]
    card = desk.find_contact("+375 29 123 45 67")
    assert card is not None and card.contact.id == ticket.contact_id


# --- classification and SLA fields ---------------------------------------------------------------


def test_registration_sets_sla_dues_from_the_priority(desk: Desk):
    ticket = desk.register(subject="Slow computer")  # P3, business hours, Monday 09:30 MSK
    assert ticket.response_due == datetime(2026, 11, 23, 7, 30, tzinfo=timezone.utc)
    # 18 business hours: Mon 09:30-18:00 (8.5), Tue (9), Wed 09:00-09:30 (0.5)
    assert ticket.resolution_due == datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc)
    assert ticket.sla_due == ticket.response_due


def test_classify_recomputes_priority_and_dues(desk: Desk, clock):
    key = register(desk)
    clock.advance(minutes=10)  # dues still count from creation
    ticket = desk.classify(key, impact="high", urgency="high")
    assert ticket.priority == "P1"
    assert ticket.response_due == datetime(2026, 11, 23, 6, 45, tzinfo=timezone.utc)
    assert ticket.resolution_due == datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc)
    assert ticket.sla_due == datetime(2026, 11, 23, 6, 45, tzinfo=timezone.utc)
    event = ticket_events(desk, key)[-1]
    assert event.op == "ticket.classify"
    assert event.changes == {
        "impact": ["medium", "high"],
        "urgency": ["medium", "high"],
        "priority": ["P3", "P1"],
        "response_due": ["2026-11-23T07:30:00.000Z", "2026-11-23T06:45:00.000Z"],
        "resolution_due": ["2026-11-25T06:30:00.000Z", "2026-11-23T10:30:00.000Z"],
        "sla_due": ["2026-11-23T07:30:00.000Z", "2026-11-23T06:45:00.000Z"],
    }

    lowered = desk.classify(key, impact="low", urgency="low")
    assert lowered.priority == "P4"
    # P4: 4 business hours response; 45 business hours resolution: Mon 8.5 + Tue-Fri 36 + next Mon 0.5
    assert lowered.response_due == datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc)
    assert lowered.resolution_due == datetime(2026, 11, 30, 6, 30, tzinfo=timezone.utc)


def test_classify_after_first_response_points_sla_due_at_resolution(desk: Desk):
    key = bring_to(desk, "in_progress")
    ticket = desk.classify(key, urgency="high")  # medium/high -> P2, 24x7, 480 minutes
    assert ticket.priority == "P2"
    assert ticket.resolution_due == datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc)
    assert ticket.sla_due == ticket.resolution_due


def test_classify_category_is_normalised_and_checked(desk: Desk, store: Store):
    key = register(desk)
    ticket = desk.classify(key, category="vpn/no_connect")
    assert ticket.category == "vpn.no_connect"
    assert ticket.priority == "P3"
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(InvalidInput, match="unknown category 'vpn/teleport'"):
        desk.classify(key, category="vpn/teleport")
    assert (ticket_row(store, key), all_events(store)) == before


def test_classify_without_change_writes_nothing(desk: Desk, store: Store):
    key = register(desk)
    before = ticket_row(store, key), all_events(store)
    same = desk.classify(key, impact="medium", urgency="medium")
    assert same.version == 1
    assert (ticket_row(store, key), all_events(store)) == before


def test_classify_closed_ticket_is_refused(desk: Desk, store: Store):
    key = bring_to(desk, "closed")
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(IllegalTransition, match="MSK-000001 is closed"):
        desk.classify(key, impact="high")
    assert (ticket_row(store, key), all_events(store)) == before


# --- first-contact resolution ----------------------------------------------------------------------


def test_fcr_true_when_first_line_resolves_quickly(desk: Desk, clock):
    key = register(desk)
    clock.advance(minutes=5)
    desk.take(key)
    clock.advance(minutes=15)
    assert desk.resolve(key, "instructions").first_contact_resolution is True
    assert desk.ticket(key).first_contact_resolution is True


def test_fcr_true_at_exactly_first_contact_minutes(desk: Desk, clock):
    key = bring_to(desk, "in_progress")
    clock.advance(minutes=30)
    assert desk.resolve(key, "instructions").first_contact_resolution is True


def test_fcr_false_after_first_contact_minutes(desk: Desk, clock):
    key = bring_to(desk, "in_progress")
    clock.advance(minutes=31)
    assert desk.resolve(key, "instructions").first_contact_resolution is False


def test_fcr_false_after_a_wait(desk: Desk, clock):
    key = bring_to(desk, "in_progress")
    clock.advance(minutes=2)
    desk.wait(key, "caller checks the cable")
    clock.advance(minutes=3)
    desk.take(key)
    clock.advance(minutes=2)
    assert desk.resolve(key, "instructions").first_contact_resolution is False


def test_fcr_false_after_escalation_even_when_back_on_first_line(desk: Desk, clock):
    key = bring_to(desk, "escalated")
    clock.advance(minutes=5)
    desk.take(key)
    assert desk.ticket(key).group_id == "first_line"
    assert desk.resolve(key, "instructions").first_contact_resolution is False


def test_fcr_false_when_resolved_by_the_escalation_group(desk: Desk, clock):
    key = bring_to(desk, "escalated")
    clock.advance(minutes=5)
    assert desk.resolve(key, "escalated_resolved").first_contact_resolution is False


def test_reopen_clears_fcr_and_it_stays_false(desk: Desk, clock):
    key = bring_to(desk, "in_progress")
    clock.advance(minutes=5)
    assert desk.resolve(key, "instructions").first_contact_resolution is True
    clock.advance(minutes=2)
    reopened = desk.reopen(key, "not fixed after all")
    assert reopened.first_contact_resolution is False
    event = ticket_events(desk, key)[-1]
    assert event.changes["first_contact_resolution"] == [True, False]
    clock.advance(minutes=2)
    assert desk.resolve(key, "instructions").first_contact_resolution is False


# --- events, notes, versions -----------------------------------------------------------------------


def test_registration_writes_one_create_event(desk: Desk, store: Store):
    events_before = all_events(store)
    ticket = desk.register(subject="Printer jam", category="printing.paper_jam")
    new = all_events(store)[len(events_before):]
    assert len(new) == 1
    (event,) = ticket_events(desk, ticket.key)
    assert (event.actor, event.op, event.version, event.entity, event.entity_id) == (
        "op1", "ticket.create", 1, "ticket", ticket.id)
    assert event.at == "2026-11-23T06:30:00.000Z"
    assert event.changes["key"] == [None, "MSK-000001"]
    assert event.changes["status"] == [None, "new"]
    assert event.changes["priority"] == [None, "P3"]
    assert event.changes["category"] == [None, "printing.paper_jam"]
    assert "operator" not in event.changes  # nothing to record for an empty field
    assert ticket.version == 1


def test_registration_with_a_new_caller_also_writes_the_contact_event(desk: Desk, store: Store):
    events_before = all_events(store)
    ticket = desk.register(subject="VPN", phone="9123456789", contact_name="Anna", site="Store 17")
    new = all_events(store)[len(events_before):]
    ops = sorted(row[7] for row in new)  # the op column
    assert ops == ["contact.create", "ticket.create"]
    contact_events = store.events_for(ticket.contact_id)
    assert len(contact_events) == 1
    assert contact_events[0].changes["phones"] == [None, ["+79123456789"]]
    assert contact_events[0].changes["site"] == [None, "Store 17"]


def test_every_change_writes_exactly_one_event_with_old_and_new_values(desk: Desk, store: Store, clock):
    key = register(desk)
    ticket_id = desk.ticket(key).id

    clock.advance(minutes=5)
    count = len(all_events(store))
    desk.take(key)
    assert len(all_events(store)) == count + 1
    take = ticket_events(desk, key)[-1]
    assert (take.actor, take.op, take.version, take.entity, take.entity_id, take.note) == (
        "op1", "ticket.take", 2, "ticket", ticket_id, None)
    assert take.at == "2026-11-23T06:35:00.000Z"
    assert take.changes == {
        "status": ["new", "in_progress"],
        "operator": [None, "op1"],
        "first_response_at": [None, "2026-11-23T06:35:00.000Z"],
        "sla_due": ["2026-11-23T07:30:00.000Z", "2026-11-25T06:30:00.000Z"],
    }

    clock.advance(minutes=5)
    count = len(all_events(store))
    desk.wait(key, "calling back after lunch")
    assert len(all_events(store)) == count + 1
    wait = ticket_events(desk, key)[-1]
    assert (wait.op, wait.version, wait.note) == ("ticket.wait", 3, "calling back after lunch")
    assert wait.changes == {
        "status": ["in_progress", "waiting_on_caller"],
        "waiting_since": [None, "2026-11-23T06:40:00.000Z"],
        "wait_count": [0, 1],
    }

    clock.advance(hours=1)  # Monday 09:40 -> 10:40 MSK: one business hour paused
    count = len(all_events(store))
    desk.take(key)
    assert len(all_events(store)) == count + 1
    back = ticket_events(desk, key)[-1]
    assert (back.op, back.version) == ("ticket.take", 4)
    assert back.changes == {
        "status": ["waiting_on_caller", "in_progress"],
        "waiting_since": ["2026-11-23T06:40:00.000Z", None],
        "paused_seconds": [0, 3600],
        "resolution_due": ["2026-11-25T06:30:00.000Z", "2026-11-25T07:30:00.000Z"],
        "sla_due": ["2026-11-25T06:30:00.000Z", "2026-11-25T07:30:00.000Z"],
    }

    clock.advance(minutes=3)
    count = len(all_events(store))
    desk.escalate(key, "network", "router is dead", dict(ESCALATE_FIELDS))
    assert len(all_events(store)) == count + 1
    escalate = ticket_events(desk, key)[-1]
    assert (escalate.op, escalate.version, escalate.note) == ("ticket.escalate", 5, "router is dead")
    assert escalate.changes == {
        "status": ["in_progress", "escalated"],
        "group_id": ["first_line", "network"],
        "operator": ["op1", None],
        "fields": [{}, {"callback_phone": PHONE}],
        "escalation_count": [0, 1],
    }

    clock.advance(minutes=3)
    desk.resolve(key, "provider_fixed", "ISP replaced the modem")
    resolve = ticket_events(desk, key)[-1]
    assert (resolve.op, resolve.version) == ("ticket.resolve", 6)
    assert resolve.changes == {
        "status": ["escalated", "resolved"],
        "resolved_at": [None, "2026-11-23T07:46:00.000Z"],
        "resolution_code": [None, "provider_fixed"],
        "resolution_note": [None, "ISP replaced the modem"],
        "first_contact_resolution": [None, False],
    }

    clock.advance(minutes=1)
    desk.close(key)
    close = ticket_events(desk, key)[-1]
    assert (close.op, close.version) == ("ticket.close", 7)
    assert close.changes == {"status": ["resolved", "closed"], "closed_at": [None, "2026-11-23T07:47:00.000Z"]}

    events = ticket_events(desk, key)
    assert [e.version for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert all(e.actor == "op1" for e in events)
    assert desk.ticket(key).version == 7
    assert desk.ticket(key).updated_at == datetime(2026, 11, 23, 7, 47, tzinfo=timezone.utc)


def test_a_note_writes_an_event_but_does_not_bump_the_version(desk: Desk, store: Store, clock):
    key = bring_to(desk, "in_progress")
    row_before = ticket_row(store, key)
    clock.advance(minutes=4)
    count = len(all_events(store))
    event = desk.note(key, "  caller says it worked yesterday  ")
    assert len(all_events(store)) == count + 1
    assert ticket_row(store, key) == row_before
    assert desk.ticket(key).version == 2
    last = ticket_events(desk, key)[-1]
    assert (last.op, last.version, last.changes, last.note, last.actor) == (
        "ticket.note", None, {}, "caller says it worked yesterday", "op1")
    assert last.at == "2026-11-23T06:34:00.000Z"
    assert event.id == last.id
    # a version-checked change after the note still sees version 2
    assert desk.wait(key, "gone", expected_version=2).version == 3


def test_a_note_on_a_closed_ticket_is_refused(desk: Desk, store: Store):
    key = bring_to(desk, "closed")
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(IllegalTransition) as refused:
        desk.note(key, "one more thing")
    assert str(refused.value) == (
        "ticket MSK-000001 is closed; a closed ticket is final, it cannot be annotated: "
        "register a new one and link it")
    assert (ticket_row(store, key), all_events(store)) == before


def test_an_empty_note_is_refused(desk: Desk, store: Store):
    key = bring_to(desk, "in_progress")
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(InvalidInput, match="note must not be empty"):
        desk.note(key, "   ")
    assert (ticket_row(store, key), all_events(store)) == before


def test_stale_expected_version_is_a_conflict_and_writes_nothing(desk: Desk, store: Store, clock):
    key = register(desk)
    assert desk.take(key, expected_version=1).version == 2
    clock.advance(minutes=1)
    before = ticket_row(store, key), all_events(store)
    with pytest.raises(Conflict) as conflict:
        desk.wait(key, "gone", expected_version=1)
    message = str(conflict.value)
    assert "MSK-000001" in message and "op1" in message and "reload" in message
    assert (ticket_row(store, key), all_events(store)) == before
    for stale in (
        lambda: desk.classify(key, impact="high", expected_version=1),
        lambda: desk.resolve(key, "instructions", expected_version=3),
        lambda: desk.escalate(key, "network", "x", dict(ESCALATE_FIELDS), expected_version=1),
    ):
        with pytest.raises(Conflict):
            stale()
        assert (ticket_row(store, key), all_events(store)) == before
    assert desk.wait(key, "gone", expected_version=2).status == "waiting_on_caller"


# --- a lead raises a priority ---------------------------------------------------------------------


def test_a_lead_raises_a_priority_with_a_reason_and_the_sla_is_counted_again(desk: Desk, clock) -> None:
    ticket = desk.register(subject="Касса не запускается", impact="medium", urgency="low")  # P4: 4 business h
    assert ticket.priority == "P4"
    raised = desk.raise_priority(KEY, "P2", "the store cannot sell: every register is down")
    assert raised.priority == "P2"
    assert (raised.impact, raised.urgency) == ("medium", "low")  # the matrix's inputs stay as classified
    # P2 runs on the 24/7 calendar: 30 min to respond, 8 h to resolve, from the ticket's creation
    assert raised.response_due == ticket.created_at + timedelta(minutes=30)
    assert raised.resolution_due == ticket.created_at + timedelta(hours=8)
    event = ticket_events(desk)[-1]
    assert (event.op, event.note, event.changes["priority"]) == (
        "ticket.prioritise", "the store cannot sell: every register is down", ["P4", "P2"])


@pytest.mark.parametrize("priority, reason, message", [
    ("P3", "the caller insists", "would not raise it"),  # P3 is what it has
    ("P4", "the caller insists", "would not raise it"),
    ("P0", "the caller insists", "is not one of"),
    ("P1", "  ", "must not be empty"),
])
def test_a_raise_that_does_not_raise_or_has_no_reason_is_refused(desk: Desk, priority, reason, message) -> None:
    desk.register(subject="Printer jams")  # medium x medium: P3
    before = ticket_row(desk.store), all_events(desk.store)
    with pytest.raises(InvalidInput, match=message):
        desk.raise_priority(KEY, priority, reason)
    assert (ticket_row(desk.store), all_events(desk.store)) == before


def test_only_leads_and_admins_raise_a_priority(desk: Desk, config, clock) -> None:
    desk.register(subject="Printer jams")
    desk.add_operator("op2", "Second Operator", "operator", [])
    desk.add_operator("lead1", "Shift Lead", "lead", [])
    with pytest.raises(PermissionDenied, match="op2 is an operator"):
        Desk(desk.store, config, "op2", clock).raise_priority(KEY, "P1", "VIP caller")
    assert Desk(desk.store, config, "lead1", clock).raise_priority(KEY, "P1", "VIP caller").priority == "P1"
