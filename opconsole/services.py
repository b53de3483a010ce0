"""What an operator can do, each action one transaction: the change and its event, or nothing.

The console and the command line both call these; neither touches the store directly for a change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable

from opconsole import domain
from opconsole.config import Config
from opconsole.domain import Contact, Operator, Role, Ticket, now_utc, to_iso
from opconsole.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from opconsole.ids import new_id
from opconsole.store import Event, Store

LINK_KINDS = ("related", "duplicate", "caused_by")


@dataclass(frozen=True)
class ContactCard:
    """A caller as the operator sees them on the phone: who, and what is open or recent."""
    contact: Contact
    open: list[Ticket]
    recent: list[Ticket]


class Desk:
    """The service desk as one operator (the actor) works it, on one store."""

    def __init__(self, store: Store, config: Config, actor: str, clock: Callable[[], datetime] = now_utc):
        self.store = store
        self.config = config
        self.actor = actor
        self.clock = clock

    # --- operators ----------------------------------------------------------------------------

    def ensure_first_operator(self) -> None:
        """A new store belongs to whoever opens it first: they become its admin."""
        if self.store.operators():
            return
        with self.store.write():
            if not self.store.operators():  # another terminal may have been first
                self._save_operator(Operator(self.actor, self.actor, Role.ADMIN, (self.config.first_line,)))

    def operator(self) -> Operator:
        return self.store.operator(self.actor)

    def add_operator(self, login: str, name: str, role: str, groups: list[str]) -> Operator:
        login = domain.check_text("login", login, 64)
        try:
            role_value = Role(role)
        except ValueError:
            raise InvalidInput(f"role {role!r} is not one of: {', '.join(r.value for r in Role)}") from None
        for group in groups:
            domain.check_group(self.config, group)
        operator = Operator(login, name.strip() or login, role_value, tuple(groups or [self.config.first_line]))
        with self.store.write():
            self._save_operator(operator)
        return operator

    def _save_operator(self, operator: Operator) -> None:
        now = to_iso(self.clock())
        try:
            before = self.store.operator(operator.login)
            old = {"name": before.name, "role": before.role.value, "groups": list(before.groups)}
        except NotFound:
            old = {"name": None, "role": None, "groups": None}
        new = {"name": operator.name, "role": operator.role.value, "groups": list(operator.groups)}
        changes = {k: [old[k], new[k]] for k in new if old[k] != new[k]}
        self.store.add_event(self._event("operator", operator.login, None, "operator.save", changes, None, now))
        self.store.upsert_operator(operator, now)

    # --- contacts -----------------------------------------------------------------------------

    def find_contact(self, phone: str) -> ContactCard | None:
        """The caller behind a phone number, with their open tickets and those of recent days."""
        number = domain.normalise_phone(phone, self.config.phone_region)
        contact = self.store.contact_by_phone(number)
        if contact is None:
            return None
        since = to_iso(self.clock() - timedelta(days=self.config.recent_days))
        tickets = self.store.tickets_of_contact(contact.id, since=since)
        return ContactCard(contact, [t for t in tickets if t.is_open], [t for t in tickets if not t.is_open])

    def _contact_for(self, phone: str | None, name: str | None, site: str | None, email: str | None,
                     organisation: str | None) -> Contact | None:
        if not phone:
            return None
        number = domain.normalise_phone(phone, self.config.phone_region)
        existing = self.store.contact_by_phone(number)
        if existing is not None:
            return existing
        contact = Contact(id=new_id(), name=(name or "").strip(), phones=[number], email=email or None,
                          organisation=organisation or None, site=site or None, created_at=self.clock())
        changes = {"name": [None, contact.name], "phones": [None, contact.phones], "site": [None, contact.site],
                   "email": [None, contact.email], "organisation": [None, contact.organisation]}
        event = self._event("contact", contact.id, 1, "contact.create", changes, None)
        self.store.insert_contact(contact, event)
        self.store.queue_op(event, {"contact": contact_doc(contact)})
        return contact

    # --- tickets ------------------------------------------------------------------------------

    def register(self, *, subject: str, phone: str | None = None, description: str = "",
                 channel: str = "phone", category: str | None = None, impact: str | None = None,
                 urgency: str | None = None, contact_name: str | None = None, site: str | None = None,
                 email: str | None = None, organisation: str | None = None) -> Ticket:
        now = self.clock()
        channel_value = domain.check_channel(channel)
        with self.store.write():
            contact = self._contact_for(phone, contact_name, site, email, organisation)
            prefix = self.store.site_prefix
            key = domain.format_key(prefix, self.store.next_number(f"ticket:{prefix}"))
            ticket = domain.new_ticket(
                self.config, id=new_id(), key=key, channel=channel_value,
                contact_id=contact.id if contact else None, subject=subject, description=description,
                category=category, impact=impact or self.config.default_impact,
                urgency=urgency or self.config.default_urgency, group_id=self.config.first_line, now=now,
            )
            changes = {name: [None, value] for name, value in ticket.snapshot().items()
                       if value not in (None, "", {}, 0)}
            event = self._event("ticket", ticket.id, 1, "ticket.create", changes, None)
            self.store.insert_ticket(ticket, event)
            self.store.queue_op(event, {"ticket": ticket.snapshot()})
        return ticket

    def ticket(self, key: str) -> Ticket:
        return self.store.ticket(key)

    def history(self, key: str) -> list[Event]:
        return self.store.events_for(self.store.ticket(key).id)

    def classify(self, key: str, *, category: str | None = None, impact: str | None = None,
                 urgency: str | None = None, expected_version: int | None = None) -> Ticket:
        if not (category or impact or urgency):
            raise InvalidInput("give at least one of category, impact or urgency")
        return self._change(key, "ticket.classify",
                            lambda t: domain.classify(self.config, t, category, impact, urgency),
                            args={"category": category, "impact": impact, "urgency": urgency},
                            expected_version=expected_version)

    def assign(self, key: str, *, to: str | None = None, group: str | None = None,
               expected_version: int | None = None) -> Ticket:
        if bool(to) == bool(group):
            raise InvalidInput("assign to exactly one of an operator (--to) or a group (--group)")
        operator = self.store.operator(to) if to else None
        return self._change(key, "ticket.assign",
                            lambda t: domain.assign(self.config, t, operator=operator, group=group),
                            args={"to": to, "group": group}, expected_version=expected_version)

    def raise_priority(self, key: str, priority: str, reason: str, expected_version: int | None = None) -> Ticket:
        """Only shift leads and admins raise a priority above what the matrix gives."""
        if self.operator().role is Role.OPERATOR:
            raise PermissionDenied(f"{self.actor} is an operator; raising a priority is for leads and admins")
        return self._change(key, "ticket.prioritise", lambda t: domain.raise_priority(self.config, t, priority, reason),
                            note=reason.strip() or None, args={"priority": priority, "reason": reason},
                            expected_version=expected_version)

    def take(self, key: str, expected_version: int | None = None) -> Ticket:
        operator = self.operator()
        return self._change(key, "ticket.take", lambda t: domain.take(self.config, t, operator, self.clock()),
                            expected_version=expected_version)

    def wait(self, key: str, reason: str | None = None, expected_version: int | None = None) -> Ticket:
        return self._change(key, "ticket.wait", lambda t: domain.wait_on_caller(t, self.clock()),
                            note=reason, args={"reason": reason}, expected_version=expected_version)

    def resolve(self, key: str, code: str, note: str | None = None, first_contact: bool | None = None,
                expected_version: int | None = None) -> Ticket:
        return self._change(
            key, "ticket.resolve",
            lambda t: domain.resolve(self.config, t, code, note, self.clock(), first_contact),
            args={"code": code, "note": note, "first_contact": first_contact}, expected_version=expected_version)

    def escalate(self, key: str, group: str, reason: str, fields: dict[str, str] | None = None,
                 expected_version: int | None = None) -> Ticket:
        def apply(ticket: Ticket) -> Ticket:
            contact = self.store.contact(ticket.contact_id) if ticket.contact_id else None
            return domain.escalate(self.config, ticket, group, reason, fields or {}, contact)
        return self._change(key, "ticket.escalate", apply, note=reason.strip() or None,
                            args={"group": group, "reason": reason, "fields": fields or {}},
                            expected_version=expected_version)

    def reopen(self, key: str, reason: str, expected_version: int | None = None) -> Ticket:
        return self._change(key, "ticket.reopen", lambda t: domain.reopen(self.config, t, reason),
                            note=reason.strip() or None, args={"reason": reason}, expected_version=expected_version)

    def close(self, key: str, expected_version: int | None = None) -> Ticket:
        return self._change(key, "ticket.close", lambda t: domain.close(t, self.clock()),
                            expected_version=expected_version)

    def note(self, key: str, text: str) -> Event:
        """Append a note: history only; it never conflicts with other edits."""
        text = domain.check_text("note", text, 10_000)
        with self.store.write():
            ticket = self.store.ticket(key)
            domain.require_not_closed(ticket, "note")
            event = self._event("ticket", ticket.id, None, "ticket.note", {}, text)
            self.store.add_event(event)
            self.store.queue_op(event, {"text": text})
        return event

    def kb_feedback(self, key: str, article_id: str, kind: str) -> Event:
        """Attach a KB article to the ticket, or rate it for the ticket ("helped" / "not_helped"): it
        goes into the ticket's history and the KB report."""
        from opconsole.kb.index import FEEDBACK, add_feedback

        if kind not in FEEDBACK:
            raise InvalidInput(f"{kind!r} is not one of: {', '.join(FEEDBACK)}")
        with self.store.write():
            ticket = self.store.ticket(key)
            event = self._event("ticket", ticket.id, None, "ticket.kb", {"kb": [None, f"{FEEDBACK[kind]} {article_id}"]},
                                None)
            add_feedback(self.store, article_id, ticket.id, self.actor, kind, event.at)
            self.store.add_event(event)
            self.store.queue_op(event, {"article_id": article_id, "kind": kind})
        return event

    def record_script(self, key: str, collected: dict[str, str], transcript: str) -> Ticket:
        """A call-script run's end: its collected values into the ticket's fields, its transcript as the note."""
        return self._change(key, "ticket.script", lambda t: replace(t, fields={**t.fields, **collected}),
                            note=transcript, args={"fields": collected, "transcript": transcript})

    def link(self, key: str, other: str, kind: str = "related") -> bool:
        if kind not in LINK_KINDS:
            raise InvalidInput(f"link kind {kind!r} is not one of: {', '.join(LINK_KINDS)}")
        with self.store.write():
            ticket, target = self.store.ticket(key), self.store.ticket(other)
            if ticket.id == target.id:
                raise InvalidInput(f"ticket {ticket.key} cannot be linked to itself")
            added = self.store.link(ticket.id, target.id, kind, to_iso(self.clock()))
            if added:
                event = self._event("ticket", ticket.id, None, "ticket.link", {"link": [None, f"{kind} {target.key}"]},
                                    None)
                self.store.add_event(event)
                self.store.queue_op(event, {"other": target.id, "kind": kind})
        return added

    # --- plumbing -----------------------------------------------------------------------------

    def _change(self, key: str, op: str, apply: Callable[[Ticket], Ticket], *, args: dict | None = None,
                note: str | None = None, expected_version: int | None = None) -> Ticket:
        """Apply one action to a ticket: the new row, its event and its outbox operation, or nothing.
        The operation carries the values it changed as its `base`, for the server's compare-and-set."""
        with self.store.write():
            before = self.store.ticket(key)
            if expected_version is not None and before.version != expected_version:
                raise self._conflict(before)
            after = apply(before)
            changes = before.changes_to(after)
            if not changes and note is None:
                return before
            now = self.clock()
            after = replace(after, version=before.version + 1, updated_at=now)
            event = self._event("ticket", after.id, after.version, op, changes, note, to_iso(now))
            self.store.update_ticket(after, event)
            base = {name: old for name, (old, _new) in changes.items()} | {"status": before.status.value}
            self.store.queue_op(event, args or {}, base)
        return after

    def _conflict(self, current: Ticket) -> Conflict:
        last = self.store.last_event_for(current.id)
        who = f" by {last.actor} at {last.at}" if last else ""
        return Conflict(f"ticket {current.key} was changed{who} since you opened it; "
                        "reload it to see the change (your input is kept)")

    def _event(self, entity: str, entity_id: str, version: int | None, op: str,
               changes: dict, note: str | None, at: str | None = None) -> Event:
        return Event(seq=None, id=new_id(), at=at or to_iso(self.clock()), actor=self.actor, entity=entity,
                     entity_id=entity_id, version=version, op=op, changes=changes, note=note)



def contact_doc(contact: Contact) -> dict:
    return {"id": contact.id, "name": contact.name, "phones": contact.phones, "email": contact.email,
            "organisation": contact.organisation, "site": contact.site,
            "created_at": to_iso(contact.created_at) if contact.created_at else None}
