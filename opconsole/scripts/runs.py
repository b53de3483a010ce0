"""Script runs kept with their tickets: start, save each answer, resume, finish, abandon, and stats.

A run's progress (its answers) is saved after every answer, so it resumes after the console
restarts; it runs on the exact script text it started with, kept in script_versions. When a run
ends, finished or abandoned, the ticket gets one event: the collected values go into the ticket's
fields (where an escalation finds them) and the transcript is the event's note.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from opconsole.domain import Status, to_iso
from opconsole.errors import InvalidInput, NotFound
from opconsole.ids import new_id
from opconsole.migrations import OPEN_STATUS_SQL
from opconsole.scripts.engine import Answer, RunState, replay
from opconsole.scripts.model import Script, parse_script

if TYPE_CHECKING:
    from opconsole.scripts.library import Library
    from opconsole.services import Desk

ENDED_STATUSES = {Status.RESOLVED, Status.CLOSED}


@dataclass(frozen=True)
class Run:
    id: str
    ticket_key: str
    state: RunState


@dataclass(frozen=True)
class TicketScripts:
    """What the player shows for a ticket: its unfinished run, else the scripts suggested for it."""
    key: str
    values: dict[str, str]  # the ticket's own template values: key, subject, caller, phone, site
    run: Run | None
    suggestions: list[Script]


class ScriptRuns:
    """Runs on the desk's store, acting as the desk's operator."""

    def __init__(self, desk: Desk, library: Library):
        self.desk, self.store, self.library = desk, desk.store, library

    def for_ticket(self, key: str, limit: int = 3) -> TicketScripts:
        ticket = self.store.ticket(key)
        contact = self.store.contact(ticket.contact_id) if ticket.contact_id else None
        values = {"key": ticket.key, "subject": ticket.subject, "caller": contact.name if contact else "",
                  "phone": contact.phones[0] if contact and contact.phones else "",
                  "site": contact.site or "" if contact else ""}
        run = self.active(ticket.key)
        suggestions = [] if run else self.library.suggest(
            ticket.category, f"{ticket.subject}\n{ticket.description or ''}", limit)
        return TicketScripts(ticket.key, values, run, suggestions)

    def active(self, ticket_key: str) -> Run | None:
        """The ticket's unfinished run, on the script version it started with."""
        ticket = self.store.ticket(ticket_key)
        row = self.store.conn.execute(
            "SELECT r.id, r.answers, r.carried, v.source, v.path FROM script_runs r "
            "JOIN script_versions v ON v.id = r.script_version "
            "WHERE r.ticket_id = ? AND r.state = 'active' ORDER BY r.started_at DESC LIMIT 1", (ticket.id,)).fetchone()
        if row is None:
            return None
        run_id, answers, carried, source, path = row
        script, problems = parse_script(path, source)
        if script is None or problems:
            raise InvalidInput(f"the stored text of this run's script no longer reads: {problems[0]}")
        state = replay(script, [Answer(*a) for a in json.loads(answers)], json.loads(carried),
                       self.desk.config.phone_region)
        return Run(run_id, ticket.key, state)

    def start(self, ticket_key: str, script_id: str, carried: dict[str, str] | None = None) -> Run:
        """A new run of the library's current version; the ticket's unfinished run, if any, is abandoned."""
        from opconsole.scripts.engine import start

        script = self.library.get(script_id)
        if script is None:
            raise NotFound(f"no usable script {script_id!r}; `opconsole scripts list` shows them")
        state = start(script, carried, self.desk.config.phone_region)
        now = to_iso(self.desk.clock())
        run_id = new_id()
        with self.store.write():
            ticket = self.store.ticket(ticket_key)
            if ticket.status in ENDED_STATUSES:
                raise InvalidInput(f"ticket {ticket.key} is {ticket.status.label}; reopen it to run a script")
            if ticket.status in (Status.NEW, Status.WAITING):  # running its script is working on it
                ticket = self.desk.take(ticket.key)
            try:
                previous = self.active(ticket.key)
            except InvalidInput:  # its stored text no longer replays: it cannot go on, so it ends here
                previous = None
                self.store.conn.execute("UPDATE script_runs SET state = 'abandoned', updated_at = ? "
                                        "WHERE ticket_id = ? AND state = 'active'", (now, ticket.id))
            if previous is not None:
                self.abandon(previous)
            version_id = self._version_id(script, now)
            self.store.conn.execute(
                "INSERT INTO script_runs (id, ticket_id, script_id, script_version, operator, started_at, updated_at, "
                "state, step, answers, carried) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, '[]', ?)",
                (run_id, ticket.id, script.id, version_id, self.desk.actor, now, now, state.step.id,
                 json.dumps(state.carried, ensure_ascii=False)))
        return Run(run_id, ticket.key, state)

    def save(self, run: Run, state: RunState) -> Run:
        """Keep the run's progress; when it reaches an outcome, finish it and record it on the ticket.
        A run that has ended (finished, or abandoned for another) is not brought back by a late save."""
        finished = state.finished
        with self.store.write():
            if not self._update(run.id, state, "finished" if finished else "active",
                                state.step.kind if finished else None):
                raise InvalidInput("this script run has ended; start the script again to change its answers")
            if finished:
                self._record(run.ticket_key, state, f"finished: {describe(state)}")
        return replace(run, state=state)

    def abandon(self, run: Run) -> None:
        """Stop the run where it is; what it collected and its transcript still go on the ticket."""
        with self.store.write():
            if not self._update(run.id, run.state, "abandoned", None):
                return  # it had ended already
            if run.state.answers and self.store.ticket(run.ticket_key).status not in ENDED_STATUSES:
                self._record(run.ticket_key, run.state, f"stopped at step {run.state.step.id!r}")

    def _update(self, run_id: str, state: RunState, status: str, outcome: str | None) -> bool:
        """Write an active run's progress or end; False if the run is not active any more."""
        answers = json.dumps([[a.step, a.value] for a in state.answers], ensure_ascii=False)
        return self.store.conn.execute(
            "UPDATE script_runs SET state = ?, step = ?, answers = ?, outcome = ?, updated_at = ? "
            "WHERE id = ? AND state = 'active'",
            (status, state.step.id, answers, outcome, to_iso(self.desk.clock()), run_id)).rowcount == 1

    def _record(self, ticket_key: str, state: RunState, ending: str) -> None:
        collected = {name: value for name, value in state.collected.items() if value}
        self.desk.record_script(ticket_key, collected, transcript(state, ending))

    def _version_id(self, script: Script, now: str) -> int:
        digest = hashlib.sha256(script.source.encode()).hexdigest()
        self.store.conn.execute(
            "INSERT INTO script_versions (script_id, version, sha256, title, path, source, first_used_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (script_id, version, sha256) DO NOTHING",
            (script.id, script.version, digest, script.title, script.path, script.source, now))
        return self.store.conn.execute(
            "SELECT id FROM script_versions WHERE script_id = ? AND version = ? AND sha256 = ?",
            (script.id, script.version, digest)).fetchone()[0]


def describe(state: RunState) -> str:
    step = state.step
    if step.kind == "escalate":
        return f"escalate to {step.outcome['group']}"
    if step.kind == "continue":
        return f"continue in {step.outcome['script']}"
    return f"resolve ({step.outcome['code']})"


def transcript(state: RunState, ending: str) -> str:
    script = state.script
    lines = [f"Script {script.title} ({script.id} v{script.version}), {ending}"]
    for n, (asked, answered) in enumerate(state.transcript(), 1):
        lines.append(f"{n}. {asked} → {answered or 'done'}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ScriptStats:
    script_id: str
    started: int
    outcomes: dict[str, int]  # resolve / escalate / continue -> finished runs
    abandoned: int
    active: int
    abandoned_at: list[tuple[str, int]]  # steps where runs were abandoned, most first


def script_stats(store) -> list[ScriptStats]:
    """Per script: runs started, finished by outcome, abandoned (stopped, or left unfinished on a ticket
    that is no longer open) and still active, and the steps where runs are abandoned most."""
    abandoned = f"(r.state = 'abandoned' OR (r.state = 'active' AND NOT t.{OPEN_STATUS_SQL}))"
    rows = store.conn.execute(
        f"SELECT r.script_id, count(*), "
        f"count(*) FILTER (WHERE r.outcome = 'resolve'), count(*) FILTER (WHERE r.outcome = 'escalate'), "
        f"count(*) FILTER (WHERE r.outcome = 'continue'), count(*) FILTER (WHERE {abandoned}), "
        f"count(*) FILTER (WHERE r.state = 'active' AND t.{OPEN_STATUS_SQL}) "
        f"FROM script_runs r JOIN tickets t ON t.id = r.ticket_id GROUP BY r.script_id ORDER BY r.script_id").fetchall()
    steps: dict[str, list[tuple[str, int]]] = {}
    for script_id, step, count in store.conn.execute(
            f"SELECT r.script_id, r.step, count(*) AS n FROM script_runs r JOIN tickets t ON t.id = r.ticket_id "
            f"WHERE {abandoned} GROUP BY r.script_id, r.step ORDER BY r.script_id, n DESC, r.step"):
        steps.setdefault(script_id, []).append((step, count))
    return [ScriptStats(sid, started, {"resolve": res, "escalate": esc, "continue": cont}, ab, act, steps.get(sid, []))
            for sid, started, res, esc, cont, ab, act in rows]
