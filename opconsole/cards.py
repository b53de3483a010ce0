"""A ticket with everything around it, and its text form: `ticket show` prints it, the console's
ticket card shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opconsole.domain import Contact, Ticket
from opconsole.store import Event, Store

# bookkeeping fields left out of the readable history (the JSON form has everything)
QUIET_FIELDS = {"id", "key", "contact_id", "created_at", "sla_due", "response_due", "resolution_due",
                "first_response_at", "resolved_at", "closed_at", "waiting_since", "paused_seconds", "subject",
                "description", "wait_count", "escalation_count", "reopen_count"}


@dataclass(frozen=True)
class TicketCard:
    ticket: Ticket
    contact: Contact | None
    links: list[dict[str, str]]
    events: list[Event]


def load_card(store: Store, key: str) -> TicketCard:
    ticket = store.ticket(key)
    contact = store.contact(ticket.contact_id) if ticket.contact_id else None
    return TicketCard(ticket, contact, store.links_of(ticket.id), store.events_for(ticket.id))


def local_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M")


def contact_line(c: Contact | None) -> str:
    if c is None:
        return ""
    parts = [c.name or "(no name)", ", ".join(c.phones)]
    parts += [p for p in (c.organisation, c.site and f"site {c.site}", c.email) if p]
    return " · ".join(parts)


def card_text(card: TicketCard) -> str:
    t = card.ticket
    lines = [f"{t.key}  {t.priority}  {t.status.label}  {t.subject}"]
    for label, value in [
        ("channel", t.channel.value), ("category", t.category or "(unclassified)"),
        ("impact / urgency", f"{t.impact} / {t.urgency}"), ("group", t.group_id),
        ("operator", t.operator or "-"), ("created", local_time(t.created_at)),
        ("response due", local_time(t.response_due)), ("resolution due", local_time(t.resolution_due)),
        ("waiting since", local_time(t.waiting_since)),
        ("contact", contact_line(card.contact)),
        ("resolution", t.resolution_code and f"{t.resolution_code}: {t.resolution_note or ''}"),
        ("fields", ", ".join(f"{k}={v}" for k, v in t.fields.items())),
        ("links", ", ".join(f"{link['kind']} {link['key']}" for link in card.links)),
    ]:
        if value:
            lines.append(f"  {label:<16} {value}")
    if t.description:
        lines += ["", f"  {t.description}", ""]
    lines.append("history:")
    for event in card.events:
        what = ", ".join(f"{k}: {v[0]} → {v[1]}" for k, v in event.changes.items() if k not in QUIET_FIELDS)
        lines.append(f"  {event.at[:19].replace('T', ' ')}  {event.actor:<12} {event.op:<16} {what}"
                     + (f"  «{event.note}»" if event.note else ""))
        lost = lost_text(event)
        if lost:
            lines.append(f"  {'':<19}  ⚠ {lost}")
    return "\n".join(lines)


def lost_text(event: Event) -> str | None:
    """What the server did not take from an event, in words; None if it took all of it."""
    if event.outcome == "conflict":
        kept = "; ".join(f"{name} stays {server!r} (changed elsewhere first), this change wanted {wanted!r}"
                         for name, (server, wanted) in (event.outcome_detail or {}).items())
        return f"conflict: {kept}"
    if event.outcome == "rejected":
        return f"refused by the server: {event.outcome_detail}"
    return None
