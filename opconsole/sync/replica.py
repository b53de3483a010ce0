"""The local store's side of sync: what the outbox holds for the server, and how the server's answers
and its change feed are written back.

The server is the authority. A document it sends (a ticket or contact as the server now has it,
tagged with the change-log cursor it came from) replaces the local row, unless this store still has
operations on that record waiting to be pushed: then the document is held back until they are
acknowledged, so the operator's unsent work stays on screen. A newer cursor always wins, so
documents can arrive in any order, and twice.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from opconsole.domain import now_utc, to_iso
from opconsole.store import TICKET_FIELDS, Event, Store, dict_rows, event_from_row

log = logging.getLogger(__name__)

CURSOR, CURSOR_EVENT, EPOCH = "sync_cursor", "sync_cursor_event", "sync_epoch"
EPOCH_SHIFT = 2**40  # rows keep epoch * 2**40 + the server's cursor, so a new history's documents win
LOST_SQL = "outcome IN ('conflict', 'rejected')"  # the condition of the events_lost index


class Replica:
    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    # --- the outbox -----------------------------------------------------------------------------

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """The oldest operations not yet acknowledged, as the push request carries them."""
        rows = self.conn.execute(
            "SELECT o.seq, o.op_id, o.name, e.entity, o.entity_id, o.args, o.base, e.id, e.at, e.actor, e.changes, "
            "e.note FROM outbox o INDEXED BY outbox_unacked JOIN events e ON e.id = o.event_id "
            "WHERE o.acked_at IS NULL ORDER BY o.seq LIMIT ?", (limit,))
        return [{"seq": seq, "op_id": op_id, "name": name, "entity": entity, "entity_id": entity_id,
                 "args": json.loads(args), "base": json.loads(base),
                 "event": {"id": event_id, "at": at, "actor": actor, "changes": json.loads(changes), "note": note}}
                for seq, op_id, name, entity, entity_id, args, base, event_id, at, actor, changes, note in rows]

    def pending_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM outbox INDEXED BY outbox_unacked WHERE acked_at IS NULL").fetchone()[0]

    def lost_count(self) -> int:
        return self.conn.execute(
            f"SELECT count(*) FROM events INDEXED BY events_lost JOIN outbox ON outbox.event_id = events.id "
            f"WHERE {LOST_SQL}").fetchone()[0]

    def lost(self, limit: int) -> list[tuple[str, Event]]:
        """This store's latest operations the server did not take in full: (ticket key, event)."""
        rows = self.conn.execute(
            f"SELECT t.key, e.* FROM events e INDEXED BY events_lost JOIN outbox o ON o.event_id = e.id "
            f"JOIN tickets t ON t.id = e.entity_id WHERE {LOST_SQL.replace('outcome', 'e.outcome')} "
            f"ORDER BY o.acked_at DESC, o.seq DESC LIMIT ?", (limit,))
        return [(row.pop("key"), event_from_row(row)) for row in dict_rows(rows)]

    def acked_seq(self) -> int:
        """The highest seq the server has acknowledged."""
        row = self.conn.execute("SELECT max(seq) FROM outbox WHERE acked_at IS NOT NULL").fetchone()
        return row[0] or 0

    def record_results(self, results: list[dict[str, Any]]) -> None:
        """The server's answers to a push: each operation acknowledged with its outcome, in one transaction."""
        now = to_iso(now_utc())
        with self.store.write():
            base = self._cursor_base()
            for result in results:
                row = self.conn.execute("SELECT o.event_id, o.entity_id, e.entity FROM outbox o JOIN events e "
                                        "ON e.id = o.event_id WHERE o.seq = ?", (result["seq"],)).fetchone()
                if row is None:
                    continue
                event_id, entity_id, entity = row
                self.conn.execute("UPDATE outbox SET acked_at = ? WHERE seq = ?", (now, result["seq"]))
                self._set_outcome(event_id, result.get("original") or result["outcome"], result.get("detail"))
                cursor = result.get("cursor")
                self.offer(entity, entity_id, None if cursor is None else base + cursor, result.get("doc"))
            self._release_held()

    def requeue_after(self, seq: int) -> int:
        """Send again every operation after `seq`: the server lost them (it was restored from a backup)."""
        with self.store.write():
            return self.conn.execute("UPDATE outbox SET acked_at = NULL WHERE seq > ? AND acked_at IS NOT NULL",
                                     (seq,)).rowcount

    # --- the change feed ------------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        return int(self.store.meta(CURSOR, "0") or 0)

    @property
    def cursor_event(self) -> str | None:
        return self.store.meta(CURSOR_EVENT) or None

    def _cursor_base(self) -> int:
        """What turns a server cursor into the one rows keep: above every cursor of the histories read
        before (read once per transaction)."""
        return int(self.store.meta(EPOCH, "0") or 0) * EPOCH_SHIFT

    def start_over(self) -> None:
        """The server's history is not the one this store read (it was restored from a backup): read the
        feed again from the start, as a new epoch, so its documents replace what the old history gave."""
        with self.store.write():
            self.store.set_meta(EPOCH, str(int(self.store.meta(EPOCH, "0") or 0) + 1))
            self.store.set_meta(CURSOR, "0")
            self.store.set_meta(CURSOR_EVENT, "")

    def apply_page(self, changes: list[dict[str, Any]], cursor: int, cursor_event: str | None = None) -> None:
        """A page of the change feed, with the cursor to continue from, in one transaction."""
        latest: dict[str, dict[str, Any]] = {}  # each record's last document on the page is its state
        with self.store.write():
            base = self._cursor_base()
            for entry in changes:
                self._add_event(entry["event"])
                if entry.get("doc") is not None:
                    latest.pop(entry["entity_id"], None)
                    latest[entry["entity_id"]] = entry  # keeps the order of last appearance
            for entry in latest.values():
                self.offer(entry["entity"], entry["entity_id"], base + entry["cursor"], entry["doc"])
            self.store.set_meta(CURSOR, str(cursor))
            self.store.set_meta(CURSOR_EVENT, cursor_event or "")

    def _add_event(self, event: dict[str, Any]) -> None:
        detail = json.dumps(event.get("detail"), ensure_ascii=False) if event.get("detail") is not None else None
        self.conn.execute(
            "INSERT INTO events (id, at, actor, entity, entity_id, version, op, changes, note, outcome, outcome_detail) "
            "VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, "
            "outcome_detail = excluded.outcome_detail",
            (event["id"], event["at"], event["actor"], event["entity"], event["entity_id"], event["op"],
             json.dumps(event.get("changes") or {}, ensure_ascii=False), event.get("note"), event.get("outcome"),
             detail))

    def _set_outcome(self, event_id: str, outcome: str, detail: Any) -> None:
        self.conn.execute("UPDATE events SET outcome = ?, outcome_detail = ? WHERE id = ?",
                          (outcome, json.dumps(detail, ensure_ascii=False) if detail is not None else None, event_id))

    # --- documents from the server --------------------------------------------------------------

    def offer(self, entity: str, entity_id: str, cursor: int | None, doc: dict[str, Any] | None) -> None:
        """A record's document from the server, at `cursor` as rows keep it (`_cursor_base`)."""
        if doc is None or cursor is None:
            return
        if self._has_pending(entity_id):
            self.conn.execute(
                "INSERT INTO sync_held (entity_id, entity, cursor, doc) VALUES (?, ?, ?, ?) ON CONFLICT (entity_id) "
                "DO UPDATE SET cursor = excluded.cursor, doc = excluded.doc WHERE excluded.cursor > sync_held.cursor",
                (entity_id, entity, cursor, json.dumps(doc, ensure_ascii=False)))
        elif entity == "ticket":
            self._apply_ticket(cursor, doc)
        elif entity == "contact":
            self._apply_contact(cursor, doc)

    def _has_pending(self, entity_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM outbox INDEXED BY outbox_pending WHERE entity_id = ? "
                                 "AND acked_at IS NULL LIMIT 1", (entity_id,)).fetchone() is not None

    def _release_held(self) -> None:
        held = self.conn.execute("SELECT entity_id, entity, cursor, doc FROM sync_held").fetchall()
        for entity_id, entity, cursor, doc in held:
            if not self._has_pending(entity_id):
                self.conn.execute("DELETE FROM sync_held WHERE entity_id = ?", (entity_id,))
                self.offer(entity, entity_id, cursor, json.loads(doc))

    def _apply_ticket(self, cursor: int, doc: dict[str, Any]) -> None:
        local = self.conn.execute("SELECT version, synced_cursor FROM tickets WHERE id = ?", (doc["id"],)).fetchone()
        if local is not None and (local[1] or 0) >= cursor:
            return
        row = ticket_row(doc, local[0] + 1 if local else 1, cursor)
        contact = row["contact_id"]
        if contact and not self.conn.execute("SELECT 1 FROM contacts WHERE id = ?", (contact,)).fetchone():
            log.warning("ticket %s refers to contact %s, which this store does not have", row["key"], contact)
            row["contact_id"] = None
        try:
            self._upsert("tickets", row, exists=local is not None)
        except sqlite3.IntegrityError as exc:  # a key this store gave a ticket the server refused, or a bad doc
            log.warning("ticket %s from the server not stored: %s", row["key"], exc)

    def _apply_contact(self, cursor: int, doc: dict[str, Any]) -> None:
        local = self.conn.execute("SELECT version, synced_cursor FROM contacts WHERE id = ?", (doc["id"],)).fetchone()
        if local is not None and (local[1] or 0) >= cursor:
            return
        at = doc.get("created_at") or to_iso(now_utc())
        row = {"id": doc["id"], "name": doc.get("name") or "", "email": doc.get("email"),
               "organisation": doc.get("organisation"), "site": doc.get("site"), "created_at": at, "updated_at": at,
               "version": local[0] + 1 if local else 1, "synced_cursor": cursor}
        self._upsert("contacts", row, exists=local is not None)
        for position, phone in enumerate(doc.get("phones") or []):
            # a number another contact already holds here stays with that contact
            self.conn.execute("INSERT INTO contact_phones (phone, contact_id, position) VALUES (?, ?, ?) "
                              "ON CONFLICT (phone) DO NOTHING", (phone, doc["id"], position))

    def _upsert(self, table: str, row: dict[str, Any], *, exists: bool) -> None:
        if exists:
            assignments = ", ".join(f"{name} = ?" for name in row if name != "id")
            self.conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?",
                              [v for k, v in row.items() if k != "id"] + [row["id"]])
        else:
            self.conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                              list(row.values()))


def ticket_row(doc: dict[str, Any], version: int, cursor: int) -> dict[str, Any]:
    """The local row of a ticket document from the server. The document holds the same plain values as
    a row (instants in the same canonical text), so nothing is parsed and formatted again."""
    row = {name: doc.get(name) for name in TICKET_FIELDS}
    row["fields"] = json.dumps(doc.get("fields") or {}, ensure_ascii=False, sort_keys=True)
    fcr = doc.get("first_contact_resolution")
    row["first_contact_resolution"] = None if fcr is None else int(fcr)
    return row | {"version": version, "synced_cursor": cursor}
