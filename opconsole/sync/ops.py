"""What the server does with one operation from a console's outbox: re-execute it against the
server's current ticket (the status machine, the user's permissions, per-field compare-and-set) and
say how it went. Pure: no storage, no HTTP.

An operation carries the action's arguments and `base`, the values of the fields it changed as the
console saw them. A field whose server value still equals `base` takes the new value; one that
another console changed meanwhile is a conflict, and the losing value goes into the outcome (and so
into the change log). A status change is only valid from the status it was made from. Notes, KB
feedback and links only append history and never conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from opconsole import domain
from opconsole.config import Config
from opconsole.domain import Channel, Contact, Operator, Role, Status, Ticket, from_iso
from opconsole.errors import OpconsoleError

APPLIED, DUPLICATE, CONFLICT, REJECTED = "applied", "duplicate", "conflict", "rejected"
TRANSITIONS = {"ticket.take", "ticket.wait", "ticket.resolve", "ticket.escalate", "ticket.reopen", "ticket.close"}
HISTORY_ONLY = {"ticket.note", "ticket.kb", "ticket.link"}
SET_FIELDS = {"ticket.classify", "ticket.assign", "ticket.script", "ticket.prioritise"}
OP_NAMES = sorted(TRANSITIONS | HISTORY_ONLY | SET_FIELDS | {"ticket.create", "contact.create"})
CLASSIFY_FIELDS = ("category", "impact", "urgency")


@dataclass(frozen=True)
class User:
    login: str
    role: Role
    groups: tuple[str, ...] = ()

    def may_see(self, ticket: Ticket | None) -> bool:
        if self.role is not Role.OPERATOR or ticket is None:
            return self.role is not Role.OPERATOR
        return ticket.group_id in self.groups or ticket.operator == self.login


@dataclass
class Outcome:
    status: str
    after: Ticket | None = None  # the ticket as it now is, when the operation changed it
    detail: Any = None  # the reason of a rejection; {field: [server value, this op's value]} of a conflict


class Rejected(Exception):
    """A permanent refusal: the operation is recorded as rejected with this reason."""


def execute(config: Config, user: User, op: dict[str, Any], current: Ticket | None,
            contact: Contact | None = None, operators: dict[str, Operator] | None = None) -> Outcome:
    """The outcome of ticket operation `op` on the server's `current` ticket (None if unknown)."""
    try:
        return _execute(config, user, op, current, contact, operators or {})
    except Rejected as exc:
        return Outcome(REJECTED, detail=str(exc))
    except OpconsoleError as exc:  # the status machine or validation refused it
        return Outcome(REJECTED, detail=str(exc))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Outcome(REJECTED, detail=f"malformed {op.get('name')} arguments: {exc!r}")


def _execute(config: Config, user: User, op: dict[str, Any], current: Ticket | None, contact: Contact | None,
             operators: dict[str, Operator]) -> Outcome:
    name, args, base = op["name"], op["args"], op["base"]
    now = from_iso(op["event"]["at"])
    if name == "ticket.create":
        if current is not None:
            raise Rejected(f"ticket {current.key} already exists")
        ticket = new_ticket(config, args["ticket"])
        if not user.may_see(ticket):
            raise Rejected(f"{user.login} may not register tickets for group {ticket.group_id}")
        return Outcome(APPLIED, after=ticket)
    if current is None:
        raise Rejected(f"no ticket {op['entity_id']} on the server")
    if not user.may_see(current):
        raise Rejected(f"{user.login} may not change ticket {current.key} of group {current.group_id}")
    if name in HISTORY_ONLY:
        return Outcome(APPLIED)
    if name in TRANSITIONS:
        if base.get("status") != current.status.value:
            return conflict({"status": [current.status.value, op["event"]["changes"].get("status", [None, None])[1]]})
        return Outcome(APPLIED, after=transition(config, name, args, current, now, op["event"]["actor"], contact))
    if name == "ticket.classify":
        return classify(config, args, base, current)
    if name == "ticket.assign":
        return assign(config, user, args, base, current, operators)
    if name == "ticket.script":
        return set_script_fields(args, base, current)
    if name == "ticket.prioritise":
        return prioritise(config, user, args, base, current)
    raise Rejected(f"unknown operation {name!r}")


def conflict(conflicts: dict[str, list[Any]], after: Ticket | None = None) -> Outcome:
    return Outcome(CONFLICT, after=after, detail=conflicts)


def new_ticket(config: Config, doc: dict[str, Any]) -> Ticket:
    """The ticket a console registered, validated and with its SLA computed again by the server's rules."""
    return domain.new_ticket(
        config, id=doc["id"], key=doc["key"], channel=Channel(doc["channel"]), contact_id=doc.get("contact_id"),
        subject=doc["subject"], description=doc.get("description") or "", category=doc.get("category"),
        impact=doc["impact"], urgency=doc["urgency"], group_id=doc["group_id"], now=from_iso(doc["created_at"]),
    )


def transition(config: Config, name: str, args: dict[str, Any], ticket: Ticket, now, actor: str,
               contact: Contact | None) -> Ticket:
    if name == "ticket.take":
        return domain.take(config, ticket, Operator(actor, actor, Role.OPERATOR), now)
    if name == "ticket.wait":
        return domain.wait_on_caller(ticket, now)
    if name == "ticket.resolve":
        return domain.resolve(config, ticket, args["code"], args.get("note"), now, args.get("first_contact"))
    if name == "ticket.escalate":
        return domain.escalate(config, ticket, args["group"], args["reason"], args.get("fields") or {}, contact)
    if name == "ticket.reopen":
        return domain.reopen(config, ticket, args["reason"])
    return domain.close(ticket, now)


def classify(config: Config, args: dict[str, Any], base: dict[str, Any], ticket: Ticket) -> Outcome:
    """Each of category, impact and urgency on its own: the fields nobody else changed are applied."""
    apply, conflicts = {}, {}
    for name in CLASSIFY_FIELDS:
        wanted = args.get(name)
        if wanted is None or name not in base:
            continue
        server = getattr(ticket, name)
        if server == base[name] or server == wanted:
            apply[name] = wanted
        else:
            conflicts[name] = [server, wanted]
    after = domain.classify(config, ticket, **{n: apply.get(n) for n in CLASSIFY_FIELDS}) if apply else None
    return conflict(conflicts, after) if conflicts else Outcome(APPLIED, after=after)


def assign(config: Config, user: User, args: dict[str, Any], base: dict[str, Any], ticket: Ticket,
           operators: dict[str, Operator]) -> Outcome:
    """An assignment is one intent: if someone else reassigned the ticket meanwhile, it is a conflict."""
    to, group = args.get("to"), args.get("group")
    if to and to != user.login and user.role is Role.OPERATOR:
        raise Rejected(f"{user.login} is an operator and may assign tickets only to themselves or to a group")
    conflicts = {name: [getattr(ticket, name), wanted] for name, wanted in
                 (("operator", to), ("group_id", group)) if name in base
                 and getattr(ticket, name) not in (base[name], wanted)}
    if conflicts:
        return conflict(conflicts)
    operator = operators.get(to) or Operator(to, to, Role.OPERATOR) if to else None
    return Outcome(APPLIED, after=domain.assign(config, ticket, operator=operator, group=group))


def prioritise(config: Config, user: User, args: dict[str, Any], base: dict[str, Any], ticket: Ticket) -> Outcome:
    """A lead's raise holds only against the priority the lead saw; one changed meanwhile is a conflict."""
    if user.role is Role.OPERATOR:
        raise Rejected(f"{user.login} is an operator; raising a priority is for leads and admins")
    if ticket.priority not in (base.get("priority"), args["priority"]):
        return conflict({"priority": [ticket.priority, args["priority"]]})
    if ticket.priority == args["priority"]:
        return Outcome(APPLIED)
    return Outcome(APPLIED, after=domain.raise_priority(config, ticket, args["priority"], args["reason"]))


def set_script_fields(args: dict[str, Any], base: dict[str, Any], ticket: Ticket) -> Outcome:
    """A call script's collected values, key by key: a value someone else set meanwhile wins."""
    before = base.get("fields") or {}
    fields, conflicts = dict(ticket.fields), {}
    for name, wanted in args["fields"].items():
        server = ticket.fields.get(name)
        if server in (before.get(name), wanted):
            fields[name] = wanted
        else:
            conflicts[f"fields.{name}"] = [server, wanted]
    after = replace(ticket, fields=fields) if fields != ticket.fields else None
    return conflict(conflicts, after) if conflicts else Outcome(APPLIED, after=after)


def ticket_from_doc(doc: dict[str, Any]) -> Ticket:
    """A ticket from its JSON form (Ticket.snapshot() plus version)."""
    values = dict(doc)
    for name in ("created_at", "response_due", "resolution_due", "sla_due", "first_response_at", "resolved_at",
                 "closed_at", "waiting_since", "updated_at"):
        values[name] = from_iso(values.get(name))
    values["channel"] = Channel(values["channel"])
    values["status"] = Status(values["status"])
    values.setdefault("version", 1)
    return Ticket(**values)


def ticket_doc(ticket: Ticket, version: int) -> dict[str, Any]:
    return {**ticket.snapshot(), "updated_at": domain.to_iso(ticket.updated_at) if ticket.updated_at else None,
            "version": version}
