"""The `opconsole` command line (../shared/design/CLI.md).

Subcommands never import Textual: only the bare `opconsole` (the console) does, lazily.
Exit codes: 0 done; 1 ran and found problems; 2 bad input or refused, with a plain message.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import click

from opconsole.config import LEVELS, PRIORITIES
from opconsole.domain import Channel, Status, to_iso
from opconsole.errors import InvalidInput, OpconsoleError

STATUSES = [s.value for s in Status]
CHANNELS = [c.value for c in Channel]


class Refused(click.ClickException):
    """Bad input or a refused action: one plain line on stderr, exit 2, nothing written."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"opconsole: {self.format_message()}", err=True)


class Group(click.Group):
    """Turns the core's errors into exit 2 with the core's own message, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpconsoleError as exc:
            raise Refused(str(exc)) from None
        except Exception as exc:
            import sqlite3  # here, not at the top: the console's start paints before it needs sqlite3

            if isinstance(exc, sqlite3.DatabaseError):
                raise Refused(f"the store cannot be used: {exc}") from None
            raise


@dataclass
class Session:
    """What the global options select, opened on first use and closed when the command ends."""

    db: str | None
    operator: str | None
    config_file: str | None
    _store: Any = None
    _config: Any = None
    _desk: Any = None
    closers: list = field(default_factory=list)

    @property
    def actor(self) -> str:
        chosen = self.operator or os.environ.get("OPCONSOLE_OPERATOR")
        if chosen:
            return chosen
        import getpass

        return getpass.getuser()

    @property
    def config(self):
        if self._config is None:
            from opconsole.config import load_config

            self._config = load_config(Path(self.config_file) if self.config_file else None)
        return self._config

    def store(self, *, quick_check: bool = False, site_prefix: str | None = None):
        if self._store is None:
            from opconsole.paths import store_path
            from opconsole.store import Store

            prefix = site_prefix or self.config.site_prefix
            self._store = Store.open(store_path(self.db), quick_check=quick_check, site_prefix=prefix)
            self.closers.append(self._store.close)
        return self._store

    @property
    def desk(self):
        if self._desk is None:
            from opconsole.services import Desk

            self._desk = Desk(self.store(), self.config, self.actor)
            self._desk.ensure_first_operator()
        return self._desk

    def acting_desk(self):
        """The desk for a change: the acting operator must be known to the store."""
        desk = self.desk
        desk.operator()
        return desk

    def close(self) -> None:
        for closer in reversed(self.closers):
            closer()


pass_session = click.make_pass_decorator(Session)


def emit_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def table(rows: Iterable[Iterable[Any]], headers: list[str]) -> None:
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for row in [headers] + rows:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


@click.group(cls=Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", metavar="PATH", help="The store file (default: $OPCONSOLE_DB, else the user data directory).")
@click.option("--operator", metavar="LOGIN", help="Who acts (default: $OPCONSOLE_OPERATOR, else the OS user).")
@click.option("--config", "config_file", metavar="FILE", help="Configuration file (default: $OPCONSOLE_CONFIG).")
@click.option("--demo", is_flag=True, help="Open the console on a store filled with a demo day.")
@click.version_option(package_name="opconsole")
@click.pass_context
def cli(ctx: click.Context, db: str | None, operator: str | None, config_file: str | None, demo: bool) -> None:
    """opconsole: the first-line service-desk console. Without a command, opens the console."""
    session = ctx.obj = Session(db, operator, config_file)
    ctx.call_on_close(session.close)
    if ctx.invoked_subcommand is None:
        from opconsole.app import run_console

        run_console(session, demo=demo)
    else:
        gc.enable()  # held off for start-up by opconsole.__main__; commands may build large data


@cli.command()
@click.pass_context
def lead(ctx: click.Context) -> None:
    """Open the shift lead's view: queues, breaches, operators, arrivals and the shift's KPIs."""
    from opconsole.app import run_console

    run_console(ctx.obj, demo=ctx.find_root().params["demo"], view="lead")


# --- init, backup, export, import ---------------------------------------------------------------

@cli.command()
@click.option("--site", metavar="PREFIX", help="Ticket key prefix of this site, e.g. MSK.")
@click.option("--demo", is_flag=True, help="Also fill the store with a realistic demo day.")
@pass_session
def init(session: Session, site: str | None, demo: bool) -> None:
    """Create or upgrade the store (safe to run again)."""
    from opconsole.domain import valid_prefix
    import sqlite3

    from opconsole.store import wal_reset_bug_affected

    prefix = valid_prefix(site) if site else None
    store = session.store(quick_check=True, site_prefix=prefix)
    if prefix and prefix != store.site_prefix:
        if store.count_tickets():
            raise InvalidInput(f"this store already numbers tickets as {store.site_prefix}-…; "
                               "its prefix cannot change once tickets exist")
        with store.write():
            store.set_meta("site_prefix", prefix)
    session.desk  # noqa: B018 - makes the first operator
    kb_store(session)  # and the starter KB
    if demo and store.count_tickets():
        click.echo("the store already has tickets; no demo day added", err=True)
    elif demo:
        from opconsole.demo import fill_demo_day

        count = fill_demo_day(session.desk)
        click.echo(f"added a demo day: {count} tickets")
    click.echo(f"store {store.path}: schema {store.schema_version()}, keys {store.site_prefix}-NNNNNN")
    if wal_reset_bug_affected():
        click.echo(f"note: SQLite {sqlite3.sqlite_version} predates 3.51.3 (WAL-reset bug); only one process "
                   "checkpoints, and `opconsole backup` makes consistent copies", err=True)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@pass_session
def backup(session: Session, file: str) -> None:
    """Write a consistent copy of the store to FILE (a new file)."""
    target = session.store().backup(file)  # the copy is checked; VACUUM INTO reads every page anyway
    click.echo(f"backup written to {target} ({target.stat().st_size} bytes)")


@cli.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@pass_session
def export_cmd(session: Session, file: str | None) -> None:
    """Write the whole store as JSON lines to FILE (or standard output)."""
    from opconsole.exchange import export_lines

    store = session.store()
    if file is None:
        for line in export_lines(store):
            sys.stdout.write(line + "\n")
        return
    target = Path(file)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = sum(out.write(line + "\n") > 0 for line in export_lines(store))
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise Refused(f"cannot write {target}: {exc.strerror}") from None
    click.echo(f"exported {count} records to {target}", err=True)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@pass_session
def import_cmd(session: Session, file: str) -> None:
    """Load JSON lines written by `export`. Bad lines are reported with file:line and skipped."""
    from opconsole.exchange import import_file

    report = import_file(session.store(), Path(file))
    for problem in report.problems:
        click.echo(problem, err=True)
    click.echo(f"imported {report.added} records, {report.unchanged} already present, "
               f"{len(report.problems)} skipped", err=True)
    if report.problems:
        sys.exit(1)


# --- tickets ------------------------------------------------------------------------------------

@cli.group(cls=Group)
def ticket() -> None:
    """Register and work tickets."""


@ticket.command("new")
@click.option("--phone", required=True, help="Caller's phone number (any common format).")
@click.option("--subject", required=True)
@click.option("--description", default="")
@click.option("--channel", type=click.Choice(CHANNELS), default="phone", show_default=True)
@click.option("--category", metavar="CAT", help="A category id from `category list`, e.g. vpn.no_connect.")
@click.option("--impact", type=click.Choice(LEVELS))
@click.option("--urgency", type=click.Choice(LEVELS))
@click.option("--name", "contact_name", help="Caller's name, if the number is new.")
@click.option("--site", help="Caller's site or store number, if the number is new.")
@click.option("--email", help="Caller's email, if the number is new.")
@click.option("--org", "organisation", help="Caller's organisation or department, if the number is new.")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def ticket_new(session: Session, phone: str, subject: str, description: str, channel: str,
               category: str | None, impact: str | None, urgency: str | None, contact_name: str | None,
               site: str | None, email: str | None, organisation: str | None, as_json: bool) -> None:
    """Register a ticket; prints its key."""
    created = session.acting_desk().register(
        phone=phone, subject=subject, description=description, channel=channel, category=category,
        impact=impact, urgency=urgency, contact_name=contact_name, site=site, email=email,
        organisation=organisation)
    if as_json:
        emit_json(ticket_json(created))
    else:
        click.echo(created.key)


@ticket.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--mine", is_flag=True, help="Only tickets assigned to me.")
@click.option("--group", help="Only tickets of this group.")
@click.option("--all", "include_done", is_flag=True, help="Include resolved and closed tickets (newest first).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_session
def ticket_list(session: Session, status: str | None, mine: bool, group: str | None, include_done: bool,
                limit: int, as_json: bool) -> None:
    """Open tickets, most urgent SLA first (or filtered by status)."""
    from opconsole.cards import local_time
    from opconsole.domain import check_group

    if group:
        check_group(session.config, group)
    found = session.store().tickets(
        status=status, operator=session.actor if mine else None, group=group,
        open_only=not (status or include_done), limit=limit)
    if as_json:
        emit_json([ticket_json(t) for t in found])
        return
    table(([t.key, t.priority, t.status.label, t.group_id, t.operator or "-", local_time(t.sla_due), t.subject[:60]]
           for t in found), ["KEY", "PRI", "STATUS", "GROUP", "OPERATOR", "SLA DUE", "SUBJECT"])


@ticket.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def ticket_show(session: Session, key: str, as_json: bool) -> None:
    """A ticket with its contact, links and full history."""
    from opconsole.cards import card_text, load_card

    card = load_card(session.store(), key)
    if as_json:
        emit_json({**ticket_json(card.ticket), "contact": contact_json(card.contact) if card.contact else None,
                   "links": card.links, "events": [e.as_dict() for e in card.events]})
        return
    click.echo(card_text(card))


def parse_fields(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--field {pair!r} must look like NAME=VALUE")
        values[name.strip()] = value
    return values


def change_command(name: str, help_text: str):
    """A ticket subcommand that changes one ticket and prints its new state in one line."""
    def decorate(fn):
        @ticket.command(name, help=help_text)
        @click.argument("key")
        @click.option("--json", "as_json", is_flag=True)
        @pass_session
        def command(session: Session, key: str, as_json: bool, **options: Any) -> None:
            changed = fn(session.acting_desk(), key, **options)
            if as_json:
                emit_json(ticket_json(changed))
            else:
                click.echo(f"{changed.key} {changed.status.label}, {changed.priority}, "
                           f"group {changed.group_id}, operator {changed.operator or '-'}")
        return command
    return decorate


@click.option("--urgency", type=click.Choice(LEVELS))
@click.option("--impact", type=click.Choice(LEVELS))
@click.option("--category", metavar="CAT")
@change_command("classify", "Set category, impact and urgency (priority and SLA follow).")
def ticket_classify(desk, key, category, impact, urgency):
    return desk.classify(key, category=category, impact=impact, urgency=urgency)


@click.option("--group", metavar="GROUP")
@click.option("--to", metavar="LOGIN")
@change_command("assign", "Assign to an operator (--to) or a group (--group).")
def ticket_assign(desk, key, to, group):
    return desk.assign(key, to=to, group=group)


@change_command("take", "Assign to me and start work.")
def ticket_take(desk, key):
    return desk.take(key)


@click.option("--reason", help="What the caller has to do or send.")
@change_command("wait", "Wait on the caller (the SLA clock pauses).")
def ticket_wait(desk, key, reason):
    return desk.wait(key, reason)


@click.option("--first-contact/--not-first-contact", default=None,
              help="Override whether this counts as first-contact resolution.")
@click.option("--note", "resolution_note")
@click.option("--code", required=True, help="A resolution code (see the configuration).")
@change_command("resolve", "Resolve with a resolution code and note.")
def ticket_resolve(desk, key, code, resolution_note, first_contact):
    return desk.resolve(key, code, resolution_note, first_contact)


@click.option("--field", "field_pairs", multiple=True, metavar="NAME=VALUE")
@click.option("--reason", required=True)
@click.option("--group", required=True, metavar="GROUP")
@change_command("escalate", "Escalate to a group, with the fields it requires.")
def ticket_escalate(desk, key, group, reason, field_pairs):
    return desk.escalate(key, group, reason, parse_fields(field_pairs))


@click.option("--reason", required=True, help="Why: it goes into the ticket's history.")
@click.option("--priority", required=True, type=click.Choice(PRIORITIES))
@change_command("raise", "Raise the priority above what impact and urgency give (leads and admins).")
def ticket_raise(desk, key, priority, reason):
    return desk.raise_priority(key, priority, reason)


@click.option("--reason", required=True)
@change_command("reopen", "Reopen a resolved ticket.")
def ticket_reopen(desk, key, reason):
    return desk.reopen(key, reason)


@change_command("close", "Close a resolved ticket.")
def ticket_close(desk, key):
    return desk.close(key)


@ticket.command("note")
@click.argument("key")
@click.argument("text")
@pass_session
def ticket_note(session: Session, key: str, text: str) -> None:
    """Add a note to the ticket's history."""
    session.acting_desk().note(key, text)
    click.echo(f"note added to {key.upper()}")


@ticket.command("link")
@click.argument("key")
@click.argument("other")
@click.option("--kind", type=click.Choice(["related", "duplicate", "caused_by"]), default="related",
              show_default=True)
@pass_session
def ticket_link(session: Session, key: str, other: str, kind: str) -> None:
    """Link two tickets."""
    added = session.acting_desk().link(key, other, kind)
    click.echo(f"{key.upper()} {kind} {other.upper()}" + ("" if added else " (already linked)"))


# --- contacts, categories, groups, operators -------------------------------------------------------

@cli.group(cls=Group)
def contact() -> None:
    """Look up callers."""


@contact.command("find")
@click.argument("phone")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def contact_find(session: Session, phone: str, as_json: bool) -> None:
    """The caller behind PHONE with open and recent tickets (exit 1 if unknown)."""
    from opconsole.cards import contact_line, local_time

    card = session.desk.find_contact(phone)
    if card is None:
        if as_json:
            emit_json(None)
        click.echo(f"no contact with phone {phone}", err=True)
        sys.exit(1)
    if as_json:
        emit_json({**contact_json(card.contact), "open": [ticket_json(t) for t in card.open],
                   "recent": [ticket_json(t) for t in card.recent]})
        return
    click.echo(contact_line(card.contact))
    for title, tickets in (("open", card.open), ("recent", card.recent)):
        click.echo(f"{title}:" + ("" if tickets else " none"))
        for t in tickets:
            click.echo(f"  {t.key}  {t.status.label:<18} {local_time(t.created_at)}  {t.subject}")


@cli.group(cls=Group)
def category() -> None:
    """The request taxonomy."""


@category.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def category_list(session: Session, as_json: bool) -> None:
    """Categories and subcategories from the configuration."""
    categories = session.config.categories.values()
    if as_json:
        emit_json([{"id": c.id, "name": c.name, "parent": c.parent if c.is_sub else None, "group": c.group}
                   for c in categories])
        return
    for c in categories:
        click.echo(f"  {c.id:<32} {c.name}" if c.is_sub else f"{c.id:<34} {c.name}")


@cli.group(cls=Group)
def group() -> None:
    """Support groups (lines)."""


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def group_list(session: Session, as_json: bool) -> None:
    """Groups with their line and the fields they require on escalation."""
    groups = session.config.groups.values()
    if as_json:
        emit_json([{"id": g.id, "name": g.name, "line": g.line,
                    "requires": {k: list(v) for k, v in g.requires.items()}} for g in groups])
        return
    table(([g.id, g.line, g.name, ", ".join(g.requires.get("*", ()))] for g in groups),
          ["GROUP", "LINE", "NAME", "ALWAYS REQUIRES"])


@cli.group(cls=Group)
def scripts() -> None:
    """Guided call scripts: the bundled ones and the site's own ([scripts] dirs in the config)."""


@scripts.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def scripts_list(session: Session, as_json: bool) -> None:
    """The usable scripts (a script with problems is left out: see `scripts check`)."""
    from opconsole.scripts.library import load_library

    library = load_library(session.config, articles=known_articles(session))
    found = sorted(library.scripts.values(), key=lambda s: s.id)
    if as_json:
        emit_json([{"id": s.id, "title": s.title, "version": s.version, "language": s.language,
                    "categories": list(s.categories), "keywords": list(s.keywords), "steps": len(s.steps),
                    "path": s.path} for s in found])
    else:
        table(([s.id, s.version, s.language, ", ".join(s.categories), s.title] for s in found),
              ["SCRIPT", "VERSION", "LANG", "CATEGORIES", "TITLE"])
    if library.failed:
        click.echo(f"{len(library.failed)} script file(s) left out for problems; `opconsole scripts check` "
                   "lists them", err=True)


@scripts.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@pass_session
def scripts_check(session: Session, paths: tuple[Path, ...]) -> None:
    """Check scripts (files or directories; none: the bundled and configured ones). Exit 1 on problems."""
    from opconsole.scripts.library import load_library

    library = load_library(session.config, paths or None, articles=known_articles(session))
    for problem in library.problems:
        click.echo(str(problem))
    checked = len(library.scripts) + len(library.failed)
    click.echo(f"{checked} script file(s) checked: {len(library.scripts)} fine, {len(library.failed)} with "
               f"{len(library.problems)} problem(s)", err=True)
    if library.problems:
        sys.exit(1)


def known_articles(session: Session) -> set[str]:
    """The KB articles scripts may show: the store's, or the starter KB's when there is no store yet."""
    from opconsole.kb.index import article_ids, bundled_ids
    from opconsole.paths import store_path

    if store_path(session.db).exists():
        ids = article_ids(session.store())
        if ids:
            return ids
    return bundled_ids()


@scripts.command("stats")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def scripts_stats(session: Session, as_json: bool) -> None:
    """Runs per script: started, finished by outcome, abandoned, and where runs are abandoned."""
    from opconsole.scripts.runs import script_stats

    stats = script_stats(session.store())
    if as_json:
        emit_json([{"script": s.script_id, "started": s.started, "outcomes": s.outcomes, "abandoned": s.abandoned,
                    "active": s.active, "abandoned_at": [{"step": step, "runs": n} for step, n in s.abandoned_at]}
                   for s in stats])
        return
    table(([s.script_id, s.started, s.outcomes["resolve"], s.outcomes["escalate"], s.outcomes["continue"],
            s.abandoned, s.active, ", ".join(f"{step} ({n})" for step, n in s.abandoned_at[:3])] for s in stats),
          ["SCRIPT", "STARTED", "RESOLVED", "ESCALATED", "CONTINUED", "ABANDONED", "ACTIVE", "ABANDONED AT"])


@cli.group(cls=Group)
def kb() -> None:
    """The knowledge base: Markdown articles with front matter, searched with stemming (en, ru)."""


@kb.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_session
def kb_import(session: Session, directory: Path) -> None:
    """Index the articles under DIRECTORY: changed files update, deleted files retire. Exit 1 if any
    article was skipped."""
    from opconsole.domain import now_utc
    from opconsole.kb.index import import_dir

    result = import_dir(session.store(), directory, now_utc(), session.config.categories)
    for problem in result.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{result.added} added, {result.updated} updated, {result.unchanged} unchanged, "
               f"{result.retired} retired, {len(result.problems)} skipped")
    if result.problems:
        sys.exit(1)


@kb.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def kb_list(session: Session, as_json: bool) -> None:
    """The articles in the store."""
    from opconsole.kb.index import articles

    found = articles(kb_store(session))
    if as_json:
        emit_json([{"id": a.id, "title": a.title, "language": a.language, "tags": list(a.tags),
                    "categories": list(a.categories), "updated": a.updated, "owner": a.owner,
                    "scripts": list(a.scripts)} for a in found])
        return
    table(([a.id, a.language, a.updated or "-", a.title] for a in found), ["ARTICLE", "LANG", "UPDATED", "TITLE"])


@kb.command("search")
@click.argument("query")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--category", metavar="CAT", help="Only articles for this category (or its subcategories).")
@click.option("--language", type=click.Choice(["en", "ru"]))
@click.option("--json", "as_json", is_flag=True)
@pass_session
def kb_search(session: Session, query: str, limit: int, category: str | None, language: str | None,
              as_json: bool) -> None:
    """Ranked articles for QUERY (at least 3 characters), with the matching passage."""
    from opconsole.domain import check_category
    from opconsole.kb.index import search
    from opconsole.kb.text import MIN_QUERY_CHARS, words

    if sum(len(w) for w in words(query)) < MIN_QUERY_CHARS:
        raise InvalidInput(f"the query needs at least {MIN_QUERY_CHARS} letters or digits")
    hits = search(kb_store(session), query, limit=limit, category=check_category(session.config, category),
                  language=language)
    if as_json:
        emit_json([{"id": h.id, "title": h.title, "language": h.language, "categories": list(h.categories),
                    "rank": h.rank, "snippet": h.snippet_text(), "matched": h.matched()} for h in hits])
        return
    for hit in hits:
        click.echo(f"{hit.id}  {hit.title}")
        click.echo(f"    {hit.snippet_text(lambda word: click.style(word, bold=True))}")
    if not hits:
        click.echo("no article matches", err=True)


@kb.command("report")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def kb_report(session: Session, as_json: bool) -> None:
    """The KB's gaps (searches that found nothing or whose results nobody opened), the articles that
    resolved the most tickets, those rated unhelpful, and stale ones."""
    from dataclasses import asdict

    from opconsole.domain import now_utc
    from opconsole.kb.index import report

    found = report(kb_store(session), now_utc().date(), session.config.kb_stale_days)
    if as_json:
        emit_json(asdict(found))
        return
    sections = (
        ("Gaps: searches that found nothing or whose results nobody opened", found.gaps,
         lambda g: f"{g['searches']:>5}  {g['query']}  ({g['found_nothing']} found nothing)"),
        ("Articles that resolved the most tickets", found.resolving,
         lambda a: f"{a['resolved_tickets']:>5}  {a['id']}  {a['title']}"),
        ("Rated unhelpful", found.unhelpful,
         lambda a: f"{a['not_helped']:>5}  {a['id']}  {a['title']}  (helped {a['helped']})"),
        (f"Stale: not updated for {session.config.kb_stale_days} days", found.stale,
         lambda a: f"  {a['updated'] or 'never'}  {a['id']}  {a['title']}"),
    )
    for title, rows, line in sections:
        click.echo(f"{title}:" + ("" if rows else " none"))
        for row in rows:
            click.echo("  " + line(row))


def kb_store(session: Session):
    """The store, with the bundled starter KB if it has no articles yet."""
    from opconsole.domain import now_utc
    from opconsole.kb.index import ensure_bundled

    store = session.store()
    ensure_bundled(store, now_utc(), session.config.categories)
    return store


@cli.group(cls=Group)
def operator() -> None:
    """Operators of this store."""


@operator.command("add")
@click.argument("login")
@click.option("--name", default="")
@click.option("--role", type=click.Choice(["operator", "lead", "admin"]), default="operator", show_default=True)
@click.option("--group", "groups", multiple=True, metavar="GROUP", help="Repeat for several groups.")
@pass_session
def operator_add(session: Session, login: str, name: str, role: str, groups: tuple[str, ...]) -> None:
    """Add or update an operator."""
    added = session.acting_desk().add_operator(login, name, role, list(groups))
    click.echo(f"operator {added.login} ({added.role.value}) in {', '.join(added.groups)}")


@operator.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_session
def operator_list(session: Session, as_json: bool) -> None:
    operators = session.desk.store.operators()
    if as_json:
        emit_json([{"login": o.login, "name": o.name, "role": o.role.value, "groups": list(o.groups),
                    "active": o.active} for o in operators])
        return
    table(([o.login, o.name, o.role.value, ", ".join(o.groups)] for o in operators),
          ["LOGIN", "NAME", "ROLE", "GROUPS"])


@cli.command("report")
@click.option("--from", "first", required=True, metavar="DATE", help="First day, YYYY-MM-DD (site time zone).")
@click.option("--to", "last", required=True, metavar="DATE", help="Last day, included.")
@click.option("--group", metavar="GROUP", help="Only tickets that were with this group.")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "json", "html"]), default="md", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@pass_session
def report_cmd(session: Session, first: str, last: str, group: str | None, fmt: str, output: str | None) -> None:
    """The service report of a period: KPIs, volumes, arrivals heatmap, escalations, operators."""
    from datetime import date, datetime, time, timedelta

    from opconsole.domain import check_group, now_utc
    from opconsole.reports import RENDER, build, site_zone

    def day(text: str, name: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"--{name} {text!r} is not a date like 2026-11-01") from None

    start_day, end_day = day(first, "from"), day(last, "to")
    if end_day < start_day:
        raise InvalidInput(f"--to {last} is before --from {first}")
    zone = site_zone(session.config)
    start = datetime.combine(start_day, time(), zone)
    end = datetime.combine(end_day + timedelta(days=1), time(), zone)
    found = build(session.store(), session.config, start, end, check_group(session.config, group) if group else None,
                  now=now_utc())
    text = RENDER[fmt](found)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"report written to {output}", err=True)
    else:
        click.echo(text, nl=not text.endswith("\n"))


# --- output helpers -----------------------------------------------------------------------------

def ticket_json(t) -> dict[str, Any]:
    return {"key": t.key, **t.snapshot(), "version": t.version, "updated_at": to_iso(t.updated_at)}


def contact_json(c) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "phones": c.phones, "email": c.email,
            "organisation": c.organisation, "site": c.site}


def main() -> None:
    try:
        cli(prog_name="opconsole")
    except KeyboardInterrupt:
        sys.exit(130)


import opconsole.sync_cli  # noqa: E402,F401 - adds serve, server, login and sync to `cli`
