"""Synthetic but realistic service-desk data for the benchmarks.

Two generators:

* `write_export(path, n_tickets)`: a JSON-lines file in exactly the shape `opconsole export` writes
  (exchange.export_lines): header, operators, events (in time order), contacts (by id), tickets
  (by id), links. Tickets are driven through the real domain functions (new_ticket, take, wait,
  escalate, assign, resolve, reopen, close) the way services.Desk does it, so each event's changes,
  each ticket's SLA dues and version (= its number of versioned events) are what the product would
  have written; only the store round trip is skipped (too slow for 100k tickets).

* `build_bulk_store(path, n_tickets)`: a store of up to millions of tickets written with direct
  executemany inserts in one BEGIN IMMEDIATE: each ticket gets one 'ticket.create' event with
  version 1, inserted before the ticket so the schema's guard triggers accept it.

Both are deterministic for a given seed; ids are UUIDv7 stamped with the record's own time, as the
product's ids would have been.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _common import ROOT, Progress, data_dir
from opconsole import domain
from opconsole.domain import Channel, Contact, Operator, Role, format_key, to_iso
from opconsole.exchange import FORMAT, dumps
from opconsole.store import TICKET_FIELDS, ticket_to_row

GENERATOR_VERSION = 4  # bump when the generated data changes: cached files are rebuilt
PREFIX = "MSK"
EPOCH_END = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)  # the "now" of generated data

FIRST = ["Иван", "Ольга", "Сергей", "Анна", "Дмитрий", "Мария", "Алексей", "Елена", "Павел", "Наталья",
         "Andrei", "Yulia", "Nikolai", "Tatiana", "Maxim", "Irina", "Viktor", "Svetlana", "Roman", "Daria"]
LAST = ["Иванов", "Петрова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Lebedev", "Kozlova",
        "Novikov", "Morozova", "Volkov", "Alekseeva", "Fedorov", "Mikhailova", "Orlov", "Zaitseva"]
ORGS = [None, None, "Retail North", "Retail South", "Head office", "Warehouse 2", "Logistics", "Finance"]
CHANNEL_WEIGHTS = [("phone", 62), ("email", 15), ("chat", 8), ("web", 6), ("messenger", 5),
                   ("monitoring", 2), ("walk-in", 2)]
LEVEL_WEIGHTS = [("low", 25), ("medium", 55), ("high", 20)]
SUBJECTS = {
    "accounts": ["Не могу войти в Windows, пароль истёк", "Account locked out after holiday",
                 "Need access for new cashier", "MFA app lost with old phone"],
    "vpn": ["VPN не подключается из дома", "VPN drops every 10 minutes", "Remote desktop to office PC fails"],
    "mail": ["Почтовый ящик переполнен", "Cannot send mail to external addresses",
             "Outlook asks for password again and again", "Suspicious e-mail with invoice attachment"],
    "telephony": ["No sound in Teams calls", "Desk phone shows 'No service'", "Headset microphone not working"],
    "printing": ["Принтер не печатает", "Paper jam error 13.A on the 2nd floor printer",
                 "Scan to folder stopped working", "Toner low on cashier printer"],
    "workstation": ["Компьютер не включается", "PC very slow since update", "Need 1C client installed",
                    "Monitor flickers"],
    "pos": ["Касса не запускается", "Receipt printer out of order at register 3",
            "Fiscal storage does not send to OFD", "Card terminal declines all cards"],
    "network": ["Нет интернета в магазине", "Wi-Fi for staff is down", "Network very slow at the warehouse",
                "Provider outage in the district"],
    "file_access": ["Нет доступа к папке \\\\fs01\\finance", "Network drive S: not mapped",
                    "Restore yesterday's version of a spreadsheet"],
    "applications": ["1C: ошибка при проведении документа", "CRM does not open client card",
                     "EDO: documents not signed", "Warehouse app crashes on stock count"],
}
DESCRIPTIONS = [
    "", "",
    "Звонит из магазина, очередь на кассе. Перезагрузка не помогла.",
    "Caller says it started this morning after the overnight update; colleagues have the same problem.",
    "User tried to restart twice. Error text read over the phone, screenshot will follow by e-mail.",
    "Since yesterday evening. Affects the whole site, the manager asks to hurry.",
]
FIELD_VALUES = {
    "site": "Store 142", "callback_phone": "+74951112233", "caller_location": "home office",
    "account_login": "ivanov.i", "approver": "Petrova O. (store manager)", "identity_verified": "callback to HR number",
    "employee_name": "Sidorov Petr", "position": "Cashier, store 142", "start_date": "2026-12-01",
    "end_date": "2026-12-31", "folder_path": "\\\\fs01\\finance\\reports", "access_level": "read",
    "mailbox_address": "orders@example.ru", "archive_size": "48 GB", "application": "1C:ERP 2.5",
    "error_text": "0x80070005 Access is denied", "steps_to_reproduce": "open card, press Post",
    "affected_devices": "all", "provider_status": "balance ok, no outage notice", "provider_ticket": "INC-55120",
    "equipment_lights": "PWR on, WAN red", "speed_test": "2 Mbit/s down", "wifi_network": "STAFF-142",
    "asset_tag": "INV-004512", "device_model": "HP LaserJet M428", "symptom": "no power after a click",
    "register_number": "3", "register_serial": "0012345678901", "fiscal_storage_state": "FN full",
    "terminal_id": "10234567",
}
WAIT_REASONS = ["send a screenshot of the error", "caller away until after lunch", "waiting for manager approval"]
NOTES = ["called back, no answer", "caller confirms the issue persists", "checked the knowledge base article",
         "same issue reported by another store"]
RESOLUTION_NOTES = [None, "reset password and unlocked account", "restarted the service", "reconfigured the client",
                    "replaced cartridge", "explained the steps to the caller"]


def uuid7_at(ms: int, rng: random.Random) -> str:
    """A UUIDv7 whose timestamp is `ms` (Unix milliseconds), random in the rest, like uuid6.uuid7()."""
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def ms_of(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def weighted(rng: random.Random, pairs: list[tuple[Any, int]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def phone_number(rng: random.Random, used: set[str]) -> str:
    """A valid E.164 Russian number (mobile or Moscow / St Petersburg landline), unique."""
    while True:
        kind = rng.random()
        if kind < 0.7:
            number = f"+79{rng.choice(['03', '05', '15', '16', '26', '85', '99'])}{rng.randrange(10**7):07d}"
        elif kind < 0.9:
            number = f"+7495{rng.randrange(10**7):07d}"
        else:
            number = f"+7812{rng.randrange(10**7):07d}"
        if number not in used:
            used.add(number)
            return number


def make_operators(config, rng: random.Random, at: datetime) -> tuple[list[Operator], dict[str, list[Operator]]]:
    ops = [Operator("admin", "Site admin", Role.ADMIN, (config.first_line,))]
    for i in range(1, 41):
        ops.append(Operator(f"op{i:02d}", f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                            Role.LEAD if i % 10 == 0 else Role.OPERATOR, (config.first_line,)))
    second: dict[str, list[Operator]] = {}
    for gid, group in config.groups.items():
        if group.line == 1:
            continue
        for i in range(1, 5):
            op = Operator(f"{gid}{i}", f"{rng.choice(FIRST)} {rng.choice(LAST)}", Role.OPERATOR, (gid,))
            ops.append(op)
            second.setdefault(gid, []).append(op)
    return ops, second


# --- the export-format file ------------------------------------------------------------------------

class ExportBuilder:
    """Plays the Desk's part without a store: each action is the domain function plus its event."""

    def __init__(self, config, seed: int):
        self.config = config
        self.rng = random.Random(seed)
        self.events: list[dict[str, Any]] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        self.tickets: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.phones_used: set[str] = set()
        self.contact_pool: list[Contact] = []
        self.categories = [c for c in config.categories.values() if c.is_sub]

    def event(self, at: datetime, actor: str, entity: str, entity_id: str, version: int | None, op: str,
              changes: dict, note: str | None) -> None:
        # Same keys, same order as export_lines writes an event row (seq dropped).
        self.events.append({"type": "event", "id": uuid7_at(ms_of(at), self.rng), "at": to_iso(at),
                            "actor": actor, "entity": entity, "entity_id": entity_id, "version": version,
                            "op": op, "changes": changes, "note": note})

    def operators(self, at: datetime) -> tuple[list[dict[str, Any]], dict[str, list[Operator]]]:
        ops, second = make_operators(self.config, self.rng, at)
        records = []
        for op in sorted(ops, key=lambda o: o.login):
            changes = {"name": [None, op.name], "role": [None, op.role.value], "groups": [None, list(op.groups)]}
            self.event(at, "admin", "operator", op.login, None, "operator.save", changes, None)
            records.append({"type": "operator", "login": op.login, "name": op.name, "role": op.role.value,
                            "groups": list(op.groups), "active": op.active, "created_at": to_iso(at)})
        self.first_line_ops = [o for o in ops if self.config.first_line in o.groups]
        self.second_line_ops = second
        return records, second

    def contact_for(self, at: datetime, actor: str) -> Contact:
        """Callers come back: two in three tickets are from a caller already known."""
        if self.contact_pool and self.rng.random() < 0.66:
            return self.rng.choice(self.contact_pool)
        rng = self.rng
        phones = [phone_number(rng, self.phones_used)]
        if rng.random() < 0.15:
            phones.append(phone_number(rng, self.phones_used))
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}" if rng.random() < 0.9 else ""
        contact = Contact(id=uuid7_at(ms_of(at), rng), name=name, phones=phones,
                          email=f"user{rng.randrange(10**6)}@example.ru" if rng.random() < 0.3 else None,
                          organisation=rng.choice(ORGS), site=f"{rng.randrange(1, 400)}" if rng.random() < 0.8 else None,
                          created_at=at)
        changes = {"name": [None, contact.name], "phones": [None, contact.phones], "site": [None, contact.site],
                   "email": [None, contact.email], "organisation": [None, contact.organisation]}
        self.event(at, actor, "contact", contact.id, 1, "contact.create", changes, None)
        iso = to_iso(at)
        self.contacts[contact.id] = {"type": "contact", "id": contact.id, "name": contact.name, "email": contact.email,
                                     "organisation": contact.organisation, "site": contact.site,
                                     "created_at": iso, "updated_at": iso, "version": 1, "phones": phones}
        self.contact_pool.append(contact)
        return contact

    def change(self, ticket, op: str, apply, at: datetime, actor: str, note: str | None = None):
        """services.Desk._change without the store."""
        after = apply(ticket)
        changes = ticket.changes_to(after)
        if not changes and note is None:
            return ticket
        after = replace(after, version=ticket.version + 1, updated_at=at)
        self.event(at, actor, "ticket", after.id, after.version, op, changes, note)
        return after

    def note(self, ticket, at: datetime, actor: str) -> None:
        self.event(at, actor, "ticket", ticket.id, None, "ticket.note", {}, self.rng.choice(NOTES))

    def ticket(self, number: int, created: datetime, outcome: str) -> None:
        rng, config = self.rng, self.config
        actor_op = rng.choice(self.first_line_ops)
        actor = actor_op.login
        phone_channel = rng.random() < 0.92
        contact = self.contact_for(created, actor) if phone_channel else None
        category = rng.choice(self.categories) if rng.random() < 0.7 else None
        top = (category.parent if category else rng.choice(list(SUBJECTS)))
        impact, urgency = weighted(rng, LEVEL_WEIGHTS), weighted(rng, LEVEL_WEIGHTS)
        t = domain.new_ticket(
            config, id=uuid7_at(ms_of(created), rng), key=format_key(PREFIX, number),
            channel=Channel(weighted(rng, CHANNEL_WEIGHTS)), contact_id=contact.id if contact else None,
            subject=rng.choice(SUBJECTS[top]), description=rng.choice(DESCRIPTIONS),
            category=category.id if category else None, impact=impact, urgency=urgency,
            group_id=config.first_line, now=created)
        changes = {name: [None, value] for name, value in t.snapshot().items() if value not in (None, "", {}, 0)}
        self.event(created, actor, "ticket", t.id, 1, "ticket.create", changes, None)

        at = created

        def later(lo_min: float, hi_min: float) -> datetime:
            nonlocal at
            at = at + timedelta(minutes=rng.uniform(lo_min, hi_min))
            return at

        def classify(t):
            cat = rng.choice(self.categories)
            return self.change(t, "ticket.classify",
                               lambda x: domain.classify(config, x, cat.id, weighted(rng, LEVEL_WEIGHTS), None),
                               later(0.5, 5), actor)

        def take(t, who=actor_op):
            now = later(1, 40)
            return self.change(t, "ticket.take", lambda x: domain.take(config, x, who, now), now, who.login)

        def wait(t):
            now = later(2, 30)
            return self.change(t, "ticket.wait", lambda x: domain.wait_on_caller(x, now), now, actor,
                               note=rng.choice(WAIT_REASONS))

        def escalate(t):
            group = (config.categories[t.category].group if t.category else None) or rng.choice(
                [g for g in config.groups if g != config.first_line])
            values = {name: FIELD_VALUES.get(name, "n/a") for name in config.required_fields(group, t.category)}
            reason = "needs second line: " + t.subject[:40]
            now = later(5, 60)
            return self.change(t, "ticket.escalate",
                               lambda x: domain.escalate(config, x, group, reason, values, contact),
                               now, actor, note=reason)

        def assign_second(t):
            who = rng.choice(self.second_line_ops[t.group_id])
            return self.change(t, "ticket.assign",
                               lambda x: domain.assign(config, x, operator=who, group=None),
                               later(10, 240), who.login), who

        def resolve(t, who=actor, code=None):
            now = later(3, 600)
            code = code or rng.choice([c for c in config.resolution_codes if c != "escalated_resolved"])
            return self.change(t, "ticket.resolve",
                               lambda x: domain.resolve(config, x, code, rng.choice(RESOLUTION_NOTES), now),
                               now, who)

        def close(t):
            now = later(3 * 24 * 60, 3 * 24 * 60 + 60)
            return self.change(t, "ticket.close", lambda x: domain.close(x, now), now, "admin")

        if outcome in ("closed", "resolved"):
            path = rng.random()
            if path < 0.15 and phone_channel:  # escalated, resolved by the second line
                if t.category is None and rng.random() < 0.5:
                    t = classify(t)
                t = take(t)
                t = escalate(t)
                who = actor
                if rng.random() < 0.6:
                    t, second_op = assign_second(t)
                    who = second_op.login
                t = resolve(t, who, "escalated_resolved")
            elif path < 0.19:  # resolved, reopened by the caller, resolved again
                t = take(t)
                t = resolve(t)
                t = self.change(t, "ticket.reopen", lambda x: domain.reopen(config, x, "caller says it is back"),
                                later(60, 1440), actor, note="caller says it is back")
                t = resolve(t)
            else:
                t = take(t)
                if rng.random() < 0.1:
                    t = wait(t)
                    t = take(t)
                if rng.random() < 0.25:
                    self.note(t, later(1, 30), actor)
                t = resolve(t)
            if outcome == "closed":
                t = close(t)
        elif outcome == "new":
            t = classify(t) if rng.random() < 0.7 else t
            self.note(t, later(1, 20), actor)
            if t.version < 2:
                self.note(t, later(1, 20), actor)
        elif outcome == "in_progress":
            t = take(t)
            self.note(t, later(1, 60), actor)
        elif outcome == "waiting_on_caller":
            t = take(t)
            t = wait(t)
        elif outcome == "escalated":
            t = take(t)
            t = escalate(t)  # every field the group requires is given, contact or not
            if rng.random() < 0.4:
                t, _ = assign_second(t)
        else:
            raise ValueError(outcome)
        if rng.random() < 0.01 and self.tickets:
            other = self.rng.choice(self.tickets[-200:])
            kind = rng.choice(["related", "duplicate"])
            link_at = later(1, 10)
            self.links.append({"type": "link", "ticket_id": t.id, "other_id": other["id"], "kind": kind,
                               "created_at": to_iso(link_at)})
            self.event(link_at, actor, "ticket", t.id, None, "ticket.link",
                       {"link": [None, f"{kind} {other['key']}"]}, None)
        row = ticket_to_row(t)
        row["fields"] = json.loads(row["fields"])  # sorted keys, as the store keeps them
        self.tickets.append({"type": "ticket", **row})


def export_header() -> str:
    """The header line exactly as the current export_lines writes it for a store of this site
    (taken from an export of an empty store, so a change to the header follows automatically)."""
    from opconsole.exchange import export_lines
    from opconsole.store import Store

    probe = data_dir() / "header-probe.db"
    for suffix in ("", "-wal", "-shm", "-checkpoint.lock"):
        Path(f"{probe}{suffix}").unlink(missing_ok=True)
    with Store.open(probe, site_prefix=PREFIX) as store:
        lines = export_lines(store)
        header = next(lines)
        lines.close()
    for suffix in ("", "-wal", "-shm", "-checkpoint.lock"):
        Path(f"{probe}{suffix}").unlink(missing_ok=True)
    record = json.loads(header)
    assert record.get("type") == "header" and record.get("format") == FORMAT, header
    return header


OUTCOMES = [("closed", 70), ("resolved", 8), ("new", 4), ("in_progress", 8), ("waiting_on_caller", 4),
            ("escalated", 6)]


def write_export(path: Path, n_tickets: int, config, *, seed: int = 7, days: float | None = None,
                 progress=None) -> dict[str, int]:
    """Write an export-format JSON-lines file with `n_tickets` tickets; returns record counts."""
    builder = ExportBuilder(config, seed)
    days = days or max(1.0, n_tickets / 1000)  # about a thousand tickets a day
    start = EPOCH_END - timedelta(days=days)
    operators, _ = builder.operators(start - timedelta(days=1))
    rng = builder.rng
    mean_gap = days * 86400 / n_tickets
    created = start
    for number in range(1, n_tickets + 1):
        created = created + timedelta(seconds=rng.expovariate(1 / mean_gap))
        outcome = weighted(rng, OUTCOMES)
        builder.ticket(number, created, outcome)
        if progress and number % 5000 == 0:
            progress(number)
    # export_lines order: events by seq (= time order here), contacts by id, tickets by id, links.
    events = sorted(builder.events, key=lambda e: e["at"])  # stable: per-entity order is kept
    contacts = sorted(builder.contacts.values(), key=lambda c: c["id"])
    tickets = sorted(builder.tickets, key=lambda t: t["id"])
    links = sorted(builder.links, key=lambda link: (link["ticket_id"], link["other_id"]))
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(export_header() + "\n")
        for group in (operators, events, contacts, tickets, links):
            for record in group:
                out.write(dumps(record) + "\n")
    tmp.replace(path)
    counts = {"operators": len(operators), "events": len(events), "contacts": len(contacts),
              "tickets": len(tickets), "links": len(links)}
    counts["records"] = sum(counts.values())
    counts["versioned_events"] = sum(1 for e in events if e["version"] is not None)
    counts["ticket_events"] = sum(1 for e in events if e["entity"] == "ticket")
    counts["bytes"] = path.stat().st_size
    return counts


# cached under benchmarks/.data/

def generated_file(n_tickets: int, config, seed: int = 7) -> tuple[Path, dict]:
    """The export file for n_tickets, generated once and reused while its description matches."""
    path = data_dir() / f"export-{n_tickets}-seed{seed}.jsonl"
    meta_path = path.with_suffix(".meta.json")
    wanted = {"generator": GENERATOR_VERSION, "tickets": n_tickets, "seed": seed}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text("utf-8"))
        if {k: meta.get(k) for k in wanted} == wanted and meta.get("counts", {}).get("bytes") == path.stat().st_size:
            print(f"  reusing {path.relative_to(ROOT)} ({meta['counts']['bytes'] / 1e6:.0f} MB)")
            return path, meta["counts"]
    print(f"  generating {path.relative_to(ROOT)} ({n_tickets:,} tickets; written once, reused later) ...", flush=True)
    start = time.perf_counter()
    counts = write_export(path, n_tickets, config, seed=seed,
                               progress=Progress("generated", n_tickets, every=10))
    print(f"  generated in {time.perf_counter() - start:.0f}s: {counts}", flush=True)
    meta_path.write_text(json.dumps({**wanted, "counts": counts}, indent=2), "utf-8")
    return path, counts



# --- the bulk-built store ---------------------------------------------------------------------------

OPEN_STATUS_WEIGHTS = [("new", 25), ("in_progress", 35), ("waiting_on_caller", 15), ("escalated", 25)]
CLOSED_CODES = ["instructions", "password_reset", "configuration_changed", "restarted", "access_granted",
                "workaround", "user_training", "replaced_equipment", "no_fault_found"]


def fast_iso(ms: int, _cache: dict[int, str] = {}) -> str:
    """to_iso() for Unix milliseconds, caching the date-and-minute prefix (1M tickets x 9 dates)."""
    minute, rest = divmod(ms, 60_000)
    prefix = _cache.get(minute)
    if prefix is None:
        if len(_cache) > 200_000:
            _cache.clear()
        prefix = _cache[minute] = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
    return f"{prefix}{rest // 1000:02d}.{rest % 1000:03d}Z"


def build_bulk_store(path: Path, n_tickets: int, config, *, open_share: float = 0.05, years: float = 3.0,
                     seed: int = 11, n_contacts: int | None = None, progress_every: int = 50_000) -> dict[str, Any]:
    """Create a store at `path` holding `n_tickets` tickets, about `open_share` of them open.

    Open tickets are mostly recent (the chance of still being open decays with age, with a floor of
    long-stuck ones), spread over the first line and the second-line groups and their operators,
    with SLA dues from the real SLA calendars (so some are overdue, most fall due in hours or days).
    """
    from opconsole.store import Store

    rng = random.Random(seed)
    n_contacts = n_contacts or max(100, n_tickets // 5)
    store = Store.open(path, site_prefix=PREFIX)
    conn = store.conn
    conn.execute("PRAGMA cache_size = -1000000")  # 1 GB page cache for the build only
    ops, second = make_operators(config, rng, EPOCH_END)
    first_ops = [o for o in ops if config.first_line in o.groups]
    second_groups = sorted(second)
    end_ms = ms_of(EPOCH_END)
    span_ms = int(years * 365 * 86400 * 1000)
    start_ms = end_ms - span_ms
    t0 = time.perf_counter()

    # Probability of a ticket still being open, by age in days: a recent backlog plus a floor of
    # long-stuck tickets, scaled so that about open_share of all tickets are open.
    age_days_total = years * 365
    per_day = n_tickets / age_days_total
    decay = 45.0                      # days
    floor_share = open_share * 0.25   # a quarter of the open tickets are long stuck (old escalations etc.)
    recent = max(0.0, open_share * n_tickets - floor_share * n_tickets)
    peak = min(0.95, recent / (per_day * decay)) if per_day else 0

    def open_probability(age_days: float) -> float:
        return min(1.0, peak * math.exp(-age_days / decay) + floor_share)

    insert_event = ("INSERT INTO events (id, at, actor, entity, entity_id, version, op, changes, note) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    columns = ", ".join(TICKET_FIELDS)
    insert_ticket = f"INSERT INTO tickets ({columns}) VALUES ({', '.join('?' * len(TICKET_FIELDS))})"
    stats: dict[str, Any] = {"open": 0, "by_status": {}, "by_group": {}, "by_operator": {}}

    conn.execute("BEGIN IMMEDIATE")
    try:
        at0 = fast_iso(start_ms - 86400_000)
        for op in ops:
            changes = {"name": [None, op.name], "role": [None, op.role.value], "groups": [None, list(op.groups)]}
            conn.execute(insert_event, (uuid7_at(start_ms - 86400_000, rng), at0, "admin", "operator", op.login,
                                        None, "operator.save", json.dumps(changes, ensure_ascii=False), None))
            store.upsert_operator(op, at0)

        # contacts, created over the same span
        used: set[str] = set()
        contact_ids = []
        contact_rows, phone_rows, contact_events = [], [], []
        for i in range(n_contacts):
            ms = start_ms + int(span_ms * i / n_contacts) - 86400_000
            cid = uuid7_at(ms, rng)
            contact_ids.append(cid)
            phone = phone_number(rng, used)
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            site = str(rng.randrange(1, 400))
            iso = fast_iso(ms)
            changes = {"name": [None, name], "phones": [None, [phone]], "site": [None, site],
                       "email": [None, None], "organisation": [None, None]}
            contact_events.append((uuid7_at(ms, rng), iso, "admin", "contact", cid, 1, "contact.create",
                                   json.dumps(changes, ensure_ascii=False), None))
            contact_rows.append((cid, name, None, None, site, iso, iso, 1))
            phone_rows.append((phone, cid, 0))
        conn.executemany(insert_event, contact_events)
        conn.executemany("INSERT INTO contacts (id, name, email, organisation, site, created_at, updated_at, version) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", contact_rows)
        conn.executemany("INSERT INTO contact_phones (phone, contact_id, position) VALUES (?, ?, ?)", phone_rows)
        stats["phones"] = [row[0] for row in phone_rows]
        del contact_rows, phone_rows, contact_events
        print(f"    contacts: {n_contacts:,} in {time.perf_counter() - t0:.0f}s", flush=True)

        categories = [c for c in config.categories.values() if c.is_sub]
        sla_minutes = {p: (s.response_minutes, s.resolution_minutes) for p, s in config.sla.items()}
        channels = [c for c, _ in CHANNEL_WEIGHTS]
        channel_w = [w for _, w in CHANNEL_WEIGHTS]
        levels = [lvl for lvl, _ in LEVEL_WEIGHTS]
        level_w = [w for _, w in LEVEL_WEIGHTS]
        chunk = 20_000
        done = 0
        next_report = progress_every
        for base in range(0, n_tickets, chunk):
            events, tickets = [], []
            for number in range(base + 1, min(base + chunk, n_tickets) + 1):
                created_ms = start_ms + int(span_ms * (number - 0.5) / n_tickets) + rng.randrange(-30_000, 30_000)
                age_days = (end_ms - created_ms) / 86400_000
                tid = uuid7_at(created_ms, rng)
                key = format_key(PREFIX, number)
                channel = rng.choices(channels, channel_w)[0]
                contact_id = rng.choice(contact_ids) if channel != "monitoring" else None
                category = rng.choice(categories) if rng.random() < 0.75 else None
                top = category.parent if category else rng.choice(list(SUBJECTS))
                subject = rng.choice(SUBJECTS[top])
                description = rng.choice(DESCRIPTIONS)
                impact = rng.choices(levels, level_w)[0]
                urgency = rng.choices(levels, level_w)[0]
                priority = config.priority(impact, urgency)
                is_open = rng.random() < open_probability(age_days)
                created_dt = datetime.fromtimestamp(created_ms / 1000, timezone.utc)
                resp_min, reso_min = sla_minutes[priority]
                fields = "{}"
                first_response = resolved = closed = waiting = None
                operator = code = note = fcr = None
                group = config.first_line
                wait_count = escalation_count = paused = 0
                if is_open:
                    status = rng.choices([s for s, _ in OPEN_STATUS_WEIGHTS], [w for _, w in OPEN_STATUS_WEIGHTS])[0]
                    # real calendars for open tickets: their sla_due is what the queue sorts on
                    calendar = config.sla[priority].calendar
                    response_dt = calendar.add(created_dt, resp_min * 60)
                    resolution_dt = calendar.add(created_dt, reso_min * 60)
                    response_due, resolution_due = to_iso(response_dt), to_iso(resolution_dt)
                    if status == "new":
                        sla_due = response_due
                    else:
                        first_response = fast_iso(created_ms + rng.randrange(60_000, 40 * 60_000))
                        sla_due = resolution_due
                        if status == "in_progress":
                            operator = rng.choice(first_ops).login
                        elif status == "waiting_on_caller":
                            operator = rng.choice(first_ops).login
                            waiting = fast_iso(min(end_ms, created_ms + rng.randrange(5, 600) * 60_000))
                            wait_count = 1
                        else:
                            group = (category.group if category else None) or rng.choice(second_groups)
                            escalation_count = 1
                            fields = json.dumps({"callback_phone": "+74951112233", "site": "142"}, sort_keys=True)
                            if rng.random() < 0.5:
                                operator = rng.choice(second[group]).login
                    stats["open"] += 1
                    stats["by_group"][group] = stats["by_group"].get(group, 0) + 1
                    if operator:
                        stats["by_operator"][operator] = stats["by_operator"].get(operator, 0) + 1
                else:
                    status = "closed" if age_days > 4 or rng.random() < 0.5 else "resolved"
                    response_due = fast_iso(created_ms + resp_min * 60_000)
                    resolution_due = fast_iso(created_ms + reso_min * 60_000)
                    sla_due = resolution_due
                    first_response = fast_iso(created_ms + rng.randrange(60_000, 40 * 60_000))
                    resolved_ms = created_ms + rng.randrange(5, 3 * 1440) * 60_000
                    resolved = fast_iso(resolved_ms)
                    if status == "closed":
                        closed = fast_iso(resolved_ms + 3 * 86400_000)
                    operator = rng.choice(first_ops).login
                    code = rng.choice(CLOSED_CODES)
                    note = rng.choice(RESOLUTION_NOTES)
                    fcr = 1 if rng.random() < 0.55 else 0
                stats["by_status"][status] = stats["by_status"].get(status, 0) + 1
                created = fast_iso(created_ms)
                updated = closed or resolved or waiting or first_response or created
                ticket = (tid, key, channel, contact_id, subject, description, category.id if category else None,
                          impact, urgency, priority, status, group, operator, created, response_due, resolution_due,
                          sla_due, first_response, resolved, closed, waiting, paused, code, note, fcr, 0,
                          escalation_count, wait_count, fields, updated, 1)
                tickets.append(ticket)
                changes = {"id": [None, tid], "key": [None, key], "channel": [None, channel],
                           "contact_id": [None, contact_id], "subject": [None, subject],
                           "description": [None, description],
                           "category": [None, category.id if category else None],
                           "impact": [None, impact], "urgency": [None, urgency], "priority": [None, priority],
                           "status": [None, "new"], "group_id": [None, config.first_line],
                           "created_at": [None, created], "response_due": [None, response_due],
                           "resolution_due": [None, resolution_due], "sla_due": [None, response_due]}
                changes = {k: v for k, v in changes.items() if v[1] not in (None, "")}
                events.append((uuid7_at(created_ms, rng), created, rng.choice(first_ops).login, "ticket", tid, 1,
                               "ticket.create", json.dumps(changes, ensure_ascii=False), None))
            conn.executemany(insert_event, events)   # the events first: the insert trigger checks them
            conn.executemany(insert_ticket, tickets)
            done += len(tickets)
            if done >= next_report or done == n_tickets:
                next_report += progress_every
                elapsed = time.perf_counter() - t0
                print(f"    tickets: {done:,}/{n_tickets:,} ({100 * done / n_tickets:.0f}%) "
                      f"{elapsed:.0f}s elapsed, {done / elapsed:,.0f}/s", flush=True)
        store.raise_counter(f"ticket:{PREFIX}", n_tickets)
        t_commit = time.perf_counter()
        conn.execute("COMMIT")
        print(f"    commit: {time.perf_counter() - t_commit:.1f}s", flush=True)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        store.close()
        raise
    t_ck = time.perf_counter()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"    checkpoint: {time.perf_counter() - t_ck:.1f}s; total build {time.perf_counter() - t0:.0f}s",
          flush=True)
    store.close()
    stats["build_seconds"] = time.perf_counter() - t0
    return stats
