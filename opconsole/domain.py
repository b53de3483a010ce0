"""The ticket domain: tickets, contacts, operators, the status machine, priority and SLA rules.

Pure Python: no SQL, no UI. Functions here take a ticket and return the changed copy; the services
layer persists the copy together with the event that describes the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from collections.abc import Iterable
from typing import Any

from opconsole.config import LEVELS, PRIORITIES, Config
from opconsole.errors import EscalationIncomplete, IllegalTransition, InvalidInput


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    WEB = "web"
    MESSENGER = "messenger"
    MONITORING = "monitoring"
    WALK_IN = "walk-in"


class Status(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting_on_caller"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class Role(StrEnum):
    OPERATOR = "operator"
    LEAD = "lead"
    ADMIN = "admin"


OPEN_STATUSES = (Status.NEW, Status.IN_PROGRESS, Status.WAITING, Status.ESCALATED)

# status -> {allowed target: the action that gets there}
TRANSITIONS: dict[Status, dict[Status, str]] = {
    Status.NEW: {Status.IN_PROGRESS: "take"},
    Status.IN_PROGRESS: {Status.WAITING: "wait", Status.ESCALATED: "escalate", Status.RESOLVED: "resolve"},
    Status.WAITING: {Status.IN_PROGRESS: "take"},
    Status.ESCALATED: {Status.IN_PROGRESS: "take", Status.RESOLVED: "resolve"},
    Status.RESOLVED: {Status.CLOSED: "close", Status.IN_PROGRESS: "reopen"},
    Status.CLOSED: {},
}

# action -> how an operator says "it cannot be <done>"
ACTION_PAST = {
    "take": "taken", "wait": "put on waiting", "escalate": "escalated", "resolve": "resolved",
    "close": "closed", "reopen": "reopened", "classify": "reclassified", "assign": "assigned",
    "note": "annotated", "link": "linked",
}
# action -> what to do first, said as an imperative
ACTION_HINT = {
    "take": "take it", "wait": "put it on waiting", "escalate": "escalate it", "resolve": "resolve it",
    "close": "close it", "reopen": "reopen it",
}


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(moment: datetime | None) -> str | None:
    """UTC, millisecond precision, fixed width: sorts as text in SQLite."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def from_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def format_key(prefix: str, number: int) -> str:
    return f"{prefix}-{number:06d}"


def parse_key(key: str) -> tuple[str, int]:
    prefix, sep, digits = key.strip().upper().rpartition("-")
    if not sep or not prefix or not digits.isdigit():
        raise InvalidInput(f"{key!r} is not a ticket key; keys look like SD-000042")
    return prefix, int(digits)


def valid_prefix(prefix: str) -> str:
    prefix = prefix.strip().upper()
    if not (1 <= len(prefix) <= 8 and prefix.isascii() and prefix.isalnum()):
        raise InvalidInput(f"site prefix {prefix!r} must be 1-8 letters or digits, e.g. MSK")
    return prefix


@dataclass
class Ticket:
    id: str
    key: str
    channel: Channel
    contact_id: str | None
    subject: str
    description: str
    category: str | None
    impact: str
    urgency: str
    priority: str
    status: Status
    group_id: str
    operator: str | None
    created_at: datetime
    response_due: datetime
    resolution_due: datetime
    sla_due: datetime  # the next due instant: response until the first response, then resolution
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    waiting_since: datetime | None = None
    paused_seconds: int = 0  # working seconds spent waiting on the caller, added to the resolution due
    resolution_code: str | None = None
    resolution_note: str | None = None
    first_contact_resolution: bool | None = None
    reopen_count: int = 0
    escalation_count: int = 0
    wait_count: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None
    version: int = 1

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def snapshot(self) -> dict[str, Any]:
        """The ticket's own fields as plain values, without its bookkeeping (version, updated_at)."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)
                if f.name not in ("version", "updated_at")}

    def changes_to(self, other: Ticket) -> dict[str, list[Any]]:
        """{field: [old, new]} for every field that differs."""
        mine, theirs = self.snapshot(), other.snapshot()
        return {name: [mine[name], theirs[name]] for name in mine if mine[name] != theirs[name]}


def plain(value: Any) -> Any:
    """A JSON-friendly form of a ticket field value."""
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dict):
        return dict(value)
    return value


@dataclass
class Contact:
    id: str
    name: str = ""
    phones: list[str] = field(default_factory=list)
    email: str | None = None
    organisation: str | None = None
    site: str | None = None
    created_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class Operator:
    login: str
    name: str
    role: Role
    groups: tuple[str, ...] = ()
    active: bool = True


# --- validation ---------------------------------------------------------------------------------

def normalise_phone(raw: str, region: str) -> str:
    """E.164 form of a phone number; numbers without a +country code are read in `region`."""
    import phonenumbers  # imported here: ~10 ms that the console's start-up need not pay

    text = raw.strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidInput(
            f"{raw!r} is not a valid phone number (read as a {region} number unless it starts with +country code)"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_level(name: str, value: str) -> str:
    if value not in LEVELS:
        raise InvalidInput(f"{name} {value!r} is not one of: {', '.join(LEVELS)}")
    return value


def check_channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(f"channel {value!r} is not one of: {', '.join(c.value for c in Channel)}") from None


def category_fit(category: str | None, categories: Iterable[str]) -> int:
    """How a ticket's category fits something filed under `categories` (a script, an article): 2 the same
    category, 1 the same top-level category, 0 neither."""
    if not category:
        return 0
    categories = list(categories)
    if category in categories:
        return 2
    top = category.split(".", 1)[0]
    return 1 if any(c.split(".", 1)[0] == top for c in categories) else 0


def check_category(config: Config, value: str | None) -> str | None:
    if value is None:
        return None
    category = value.strip().replace("/", ".")
    if category not in config.categories:
        raise InvalidInput(f"unknown category {value!r}; `opconsole category list` shows them")
    return category


def check_group(config: Config, value: str) -> str:
    if value not in config.groups:
        raise InvalidInput(f"unknown group {value!r}; `opconsole group list` shows them")
    return value


def check_text(name: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(f"{name} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{name} is {len(text)} characters long; at most {limit} are allowed")
    return text


# --- SLA ----------------------------------------------------------------------------------------

def sla_dues(config: Config, priority: str, start: datetime, paused_seconds: int = 0) -> tuple[datetime, datetime]:
    """Response and resolution due instants of a ticket of `priority` opened at `start`, with the
    working seconds it has spent waiting on the caller added to the resolution."""
    target = config.sla[priority]
    return (target.calendar.add(start, target.response_minutes * 60),
            target.calendar.add(start, target.resolution_minutes * 60 + paused_seconds))


def with_sla(config: Config, ticket: Ticket) -> Ticket:
    response, resolution = sla_dues(config, ticket.priority, ticket.created_at, ticket.paused_seconds)
    pending_response = ticket.first_response_at is None
    return replace(
        ticket, response_due=response, resolution_due=resolution,
        sla_due=response if pending_response else resolution,
    )


def sla_preview(config: Config, impact: str, urgency: str, now: datetime) -> tuple[str, datetime, datetime]:
    """Priority, response due and resolution due a ticket registered now would get."""
    priority = config.priority(impact, urgency)
    return (priority, *sla_dues(config, priority, now))


# --- the status machine ---------------------------------------------------------------------------

def require_action(ticket: Ticket, action: str, target: Status) -> None:
    """Raise IllegalTransition unless `action` moves the ticket from its status to `target`."""
    if TRANSITIONS[ticket.status].get(target) != action:
        raise IllegalTransition(transition_message(ticket, action))


def transition_message(ticket: Ticket, action: str) -> str:
    head = f"ticket {ticket.key} is {ticket.status.label}"
    if ticket.status is Status.IN_PROGRESS and action == "take":
        return f"{head} with {ticket.operator or 'nobody'} already; assign it to take it over"
    tail = f"it cannot be {ACTION_PAST.get(action, action)}"
    if ticket.status is Status.CLOSED:
        return f"{head}; a closed ticket is final, {tail}: register a new one and link it"
    if action == "reopen" and ticket.is_open:
        return f"{head}; it is still open, {tail}"
    path = actions_before(ticket.status, action)
    if not path:
        return f"{head}; {tail}"
    steps = " and ".join(ACTION_HINT[a] for a in path)
    return f"{head}; {steps} first, {tail}"


def actions_before(status: Status, action: str) -> list[str]:
    """The shortest list of actions that leads from `status` to where `action` is allowed, or
    straight to where `action` would have led (a resolved ticket is reopened rather than taken)."""
    goals = {target for transitions in TRANSITIONS.values() for target, a in transitions.items() if a == action}
    frontier: list[tuple[Status, list[str]]] = [(status, [])]
    seen = {status}
    while frontier:
        current, path = frontier.pop(0)
        if action in TRANSITIONS[current].values() or (path and current in goals):
            return path
        for target, step in TRANSITIONS[current].items():
            if target not in seen:
                seen.add(target)
                frontier.append((target, path + [step]))
    return []


def require_not_closed(ticket: Ticket, action: str) -> None:
    if ticket.status is Status.CLOSED:
        raise IllegalTransition(transition_message(ticket, action))


def new_ticket(
    config: Config, *, id: str, key: str, channel: Channel, contact_id: str | None, subject: str,
    description: str, category: str | None, impact: str, urgency: str, group_id: str, now: datetime,
) -> Ticket:
    draft = Ticket(
        id=id, key=key, channel=channel, contact_id=contact_id,
        subject=check_text("subject", subject, 200), description=description.strip(),
        category=check_category(config, category),
        impact=check_level("impact", impact), urgency=check_level("urgency", urgency),
        priority=config.priority(impact, urgency), status=Status.NEW,
        group_id=check_group(config, group_id), operator=None, created_at=now,
        response_due=now, resolution_due=now, sla_due=now, updated_at=now,
    )
    return with_sla(config, draft)


def classify(config: Config, ticket: Ticket, category: str | None, impact: str | None, urgency: str | None) -> Ticket:
    require_not_closed(ticket, "classify")
    impact = check_level("impact", impact) if impact else ticket.impact
    urgency = check_level("urgency", urgency) if urgency else ticket.urgency
    changed = replace(
        ticket,
        category=check_category(config, category) if category else ticket.category,
        impact=impact, urgency=urgency, priority=config.priority(impact, urgency),
    )
    return with_sla(config, changed)


def raise_priority(config: Config, ticket: Ticket, priority: str, reason: str) -> Ticket:
    """A lead's decision above the impact x urgency matrix: a higher priority, with its SLA dues counted
    again from the ticket's creation (the next classification derives the priority from the matrix again)."""
    require_not_closed(ticket, "raise the priority of")
    if priority not in PRIORITIES:
        raise InvalidInput(f"priority {priority!r} is not one of: {', '.join(PRIORITIES)}")
    if PRIORITIES.index(priority) >= PRIORITIES.index(ticket.priority):
        raise InvalidInput(f"ticket {ticket.key} is {ticket.priority} already; {priority} would not raise it")
    check_text("the reason for raising the priority", reason, 2000)
    return with_sla(config, replace(ticket, priority=priority))


def assign(config: Config, ticket: Ticket, *, operator: Operator | None, group: str | None) -> Ticket:
    require_not_closed(ticket, "assign")
    if operator is not None and not operator.active:
        raise InvalidInput(f"operator {operator.login} is deactivated and cannot take tickets")
    group_id = check_group(config, group) if group else ticket.group_id
    login = ticket.operator
    if operator is not None:
        login = operator.login
        if group is None and operator.groups and group_id not in operator.groups:
            group_id = operator.groups[0]
    elif group is not None and group_id != ticket.group_id:
        login = None  # a new group picks its own operator
    return replace(ticket, group_id=group_id, operator=login)


def take(config: Config, ticket: Ticket, operator: Operator, now: datetime) -> Ticket:
    """Assign to `operator` and start work: from new, from waiting (the caller is back) or from an
    escalation returned to first line."""
    require_action(ticket, "take", Status.IN_PROGRESS)
    changed = replace(ticket, status=Status.IN_PROGRESS, operator=operator.login)
    if ticket.status is Status.ESCALATED:
        changed.group_id = config.first_line
    if ticket.status is Status.WAITING:
        changed = resume_clock(config, changed, now)
    if changed.first_response_at is None:
        changed.first_response_at = now
    return with_sla(config, changed)


def resume_clock(config: Config, ticket: Ticket, now: datetime) -> Ticket:
    assert ticket.waiting_since is not None
    calendar = config.sla[ticket.priority].calendar
    paused = calendar.between(ticket.waiting_since, now)
    return replace(ticket, waiting_since=None, paused_seconds=ticket.paused_seconds + paused)


def wait_on_caller(ticket: Ticket, now: datetime) -> Ticket:
    require_action(ticket, "wait", Status.WAITING)
    return replace(ticket, status=Status.WAITING, waiting_since=now, wait_count=ticket.wait_count + 1)


def resolve(config: Config, ticket: Ticket, code: str, note: str | None, now: datetime,
            first_contact: bool | None = None) -> Ticket:
    require_action(ticket, "resolve", Status.RESOLVED)
    if code not in config.resolution_codes:
        raise InvalidInput(f"unknown resolution code {code!r}; known codes: {', '.join(config.resolution_codes)}")
    if first_contact is None:
        first_contact = (
            ticket.group_id == config.first_line
            and ticket.escalation_count == 0 and ticket.wait_count == 0 and ticket.reopen_count == 0
            and now - ticket.created_at <= timedelta(minutes=config.first_contact_minutes)
        )
    changed = replace(
        ticket, status=Status.RESOLVED, resolved_at=now, resolution_code=code,
        resolution_note=(note or "").strip() or None, first_contact_resolution=first_contact,
    )
    if changed.first_response_at is None:
        changed.first_response_at = now
    return with_sla(config, changed)


def escalate(config: Config, ticket: Ticket, group: str, reason: str, values: dict[str, str],
             contact: Contact | None) -> Ticket:
    require_action(ticket, "escalate", Status.ESCALATED)
    group = check_group(config, group)
    if group == config.first_line:
        raise InvalidInput(f"{group} is first line itself; escalate to a second- or third-line group")
    reason = check_text("escalation reason", reason, 2000)
    collected = {**ticket.fields, **{k: v.strip() for k, v in values.items() if v.strip()}}
    derived = {"site": contact.site if contact else None,
               "callback_phone": contact.phones[0] if contact and contact.phones else None}
    for name, value in derived.items():
        if value and name not in collected:
            collected[name] = value
    missing = [name for name in config.required_fields(group, ticket.category) if not collected.get(name)]
    if missing:
        listed = ", ".join(f"{name} ({config.field_label(name)})" for name in missing)
        raise EscalationIncomplete(
            f"ticket {ticket.key} cannot be escalated to {group}: missing {listed}; "
            f"give them with --field NAME=VALUE", missing,
        )
    return replace(
        ticket, status=Status.ESCALATED, group_id=group, operator=None, fields=collected,
        escalation_count=ticket.escalation_count + 1,
    )


def reopen(config: Config, ticket: Ticket, reason: str) -> Ticket:
    require_action(ticket, "reopen", Status.IN_PROGRESS)
    check_text("reopen reason", reason, 2000)
    changed = replace(
        ticket, status=Status.IN_PROGRESS, reopen_count=ticket.reopen_count + 1, resolved_at=None,
        resolution_code=None, resolution_note=None, first_contact_resolution=False,
    )
    return with_sla(config, changed)


def close(ticket: Ticket, now: datetime) -> Ticket:
    require_action(ticket, "close", Status.CLOSED)
    return replace(ticket, status=Status.CLOSED, closed_at=now)
