"""The knowledge base: front matter, incremental import, ranking, stemming, safe queries, suggestions,
the learning loop's report, and the command line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opconsole.kb.index import BUNDLED, article_ids, import_dir, report, search, suggest
from opconsole.kb.text import fts_query
from opconsole.scripts.library import BUNDLED as SCRIPTS
from opconsole.scripts.library import load_library
from opconsole.services import Desk
from opconsole.store import Store

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


def article(directory: Path, name: str, title: str, body: str, *, tags: str = "[]", categories: str = "[]",
            language: str = "en", updated: str = "2026-10-01") -> Path:
    path = directory / f"{name}.md"
    path.write_text(f"---\nid: {name}\ntitle: \"{title}\"\ntags: {tags}\ncategories: {categories}\n"
                    f"language: {language}\nupdated: {updated}\nowner: Service desk\n---\n\n{body}\n", "utf-8")
    return path


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "kb"
    directory.mkdir()
    filler = " ".join(["Restart the workstation and check the cable."] * 8)
    article(directory, "kb-printer-title", "Printer does not print", filler, categories="[printing.not_printing]")
    article(directory, "kb-printer-mention", "Workstation checklist", f"{filler} Also look at the printer once.")
    article(directory, "kb-password", "Смена пароля", "Пароль меняют через Ctrl+Alt+Del. Новый пароль должен "
            "отличаться от старого паролем.", language="ru", categories="[accounts.password_reset]")
    article(directory, "kb-printing-guide", "Guide", "Printing a test page helps find the fault. " + filler)
    return directory


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def test_a_title_match_ranks_above_a_single_body_mention(store: Store, kb_dir: Path):
    import_dir(store, kb_dir, NOW)
    found = ids(search(store, "printer"))
    assert found.index("kb-printer-title") < found.index("kb-printer-mention")


@pytest.mark.parametrize("query", ["пароль", "пароля", "паролем", "ПАРОЛИ"])
def test_russian_forms_find_the_same_article(store: Store, kb_dir: Path, query: str):
    import_dir(store, kb_dir, NOW)
    assert ids(search(store, query + " ")) == ["kb-password"]


@pytest.mark.parametrize("query", ["print ", "printing ", "printer ", "prints "])
def test_english_forms_find_the_same_articles(store: Store, kb_dir: Path, query: str):
    import_dir(store, kb_dir, NOW)
    assert set(ids(search(store, query))) == {"kb-printer-title", "kb-printer-mention", "kb-printing-guide"}


def test_the_last_word_matches_as_a_prefix_while_it_is_typed(store: Store, kb_dir: Path):
    import_dir(store, kb_dir, NOW)
    assert ids(search(store, "паро")) == ["kb-password"]
    assert ids(search(store, "pri")) and not search(store, "pr")  # fewer than 3 characters: no ranked search


def test_snippets_mark_the_words_as_written(store: Store, kb_dir: Path):
    import_dir(store, kb_dir, NOW)
    [hit] = search(store, "паролем ")
    assert {"Пароль", "пароль", "паролем"} <= set(hit.matched())
    assert "Ctrl+Alt+Del" in hit.snippet_text()


@pytest.mark.parametrize("query", ['"unclosed', "print*", "-printer", "title:printer", "(printer", "printer)",
                                   "printer NEAR page", "NEAR(printer page)", "printer AND", "OR printer",
                                   "NOT printer", "^printer", "printer + page", "a:b:c", "'"])
def test_fts_syntax_in_a_query_is_plain_text(store: Store, kb_dir: Path, query: str):
    """Operators and punctuation never raise and mean nothing: the words alone decide the result."""
    import_dir(store, kb_dir, NOW)
    words_only = re.sub(r"[^\w\s]", " ", query).rstrip() + (" " if query[-1:].isspace() else "")
    assert ids(search(store, query)) == ids(search(store, words_only.lower()))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_any_typed_text_is_a_safe_query(query: str):
    expression = fts_query(query)
    if expression is None:
        return
    _memory_fts().execute("SELECT count(*) FROM t WHERE t MATCH ?", (expression,)).fetchone()  # never raises


def _memory_fts():
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(a)")
    conn.execute("INSERT INTO t VALUES ('print парол near and')")
    return conn


def test_filters_apply_after_the_match(store: Store, kb_dir: Path):
    import_dir(store, kb_dir, NOW)
    assert ids(search(store, "printer", category="printing")) == ["kb-printer-title"]
    assert ids(search(store, "пароль", language="en")) == []
    assert ids(search(store, "пароль", language="ru")) == ["kb-password"]


def test_reimport_updates_changed_retires_deleted_and_skips_unchanged(store: Store, kb_dir: Path):
    first = import_dir(store, kb_dir, NOW)
    assert (first.added, first.updated, first.unchanged, first.retired) == (4, 0, 0, 0)
    again = import_dir(store, kb_dir, NOW)
    assert (again.added, again.updated, again.unchanged, again.retired) == (0, 0, 4, 0)

    article(kb_dir, "kb-printing-guide", "Guide", "Scanning to a folder needs the share password.")
    (kb_dir / "kb-printer-mention.md").unlink()
    os.utime(kb_dir / "kb-password.md")  # touched, not changed
    changed = import_dir(store, kb_dir, NOW)
    assert (changed.added, changed.updated, changed.unchanged, changed.retired) == (0, 1, 2, 1)
    assert ids(search(store, "scanning ")) == ["kb-printing-guide"]
    assert "kb-printer-mention" not in article_ids(store)
    assert set(ids(search(store, "printer "))) == {"kb-printer-title"}


def test_a_malformed_article_is_reported_at_its_line_and_the_rest_import(store: Store, kb_dir: Path):
    (kb_dir / "broken.md").write_text("---\nid: kb-broken\ntitle: [unclosed\n---\nbody\n", "utf-8")
    (kb_dir / "untitled.md").write_text("---\nid: kb-untitled\ntags: [a]\n---\nbody\n", "utf-8")
    (kb_dir / "no-front.md").write_text("# Just Markdown\n", "utf-8")
    result = import_dir(store, kb_dir, NOW)
    messages = sorted(str(p).removeprefix(str(kb_dir) + "/") for p in result.problems)
    assert messages[0].startswith("broken.md:3: front matter is not valid YAML: ")  # libyaml's words or PyYAML's
    assert messages[1:] == [
        "no-front.md:1: no front matter: the file must start with a line '---', then id, title and the rest",
        "untitled.md:1: the article has no title: add title: \"...\""]
    assert result.added == 4


def test_the_starter_kb_imports_cleanly_and_covers_every_script_article(store: Store, config):
    result = import_dir(store, BUNDLED, NOW, config.categories)
    assert not result.problems, result.problems
    assert result.added >= 30
    languages = [row[0] for row in store.conn.execute("SELECT language FROM kb_articles")]
    assert languages.count("ru") >= 10
    library = load_library(config, [SCRIPTS], articles=article_ids(store))
    assert not library.problems, library.problems


def test_suggestions_come_from_the_tickets_text_and_category(store: Store, config):
    import_dir(store, BUNDLED, NOW, config.categories)
    found = ids(suggest(store, "Не печатает принтер в бухгалтерии", "Горит оранжевая лампочка, замятие бумаги",
                        "printing.paper_jam"))
    assert found[0] == "kb-printer-paper-jam"
    assert ids(suggest(store, "VPN не подключается из дома", "", None))[0].startswith("kb-vpn")


def test_the_report_lists_gaps_resolving_unhelpful_and_stale_articles(desk: Desk, kb_dir: Path):
    store = desk.store
    import_dir(store, kb_dir, NOW)
    article(kb_dir, "kb-old", "Old article", "Outdated text.", updated="2024-01-10")
    import_dir(store, kb_dir, NOW)
    one = desk.register(phone="+79161234567", subject="Принтер", channel="phone")
    two = desk.register(phone="+79161234568", subject="Принтер", channel="phone")
    for key in (one.key, two.key):
        desk.take(key)
        desk.kb_feedback(key, "kb-printer-title", "attached")
    desk.resolve(one.key, "instructions", "by the article")
    desk.kb_feedback(two.key, "kb-printer-mention", "not_helped")
    desk.kb_feedback(two.key, "kb-printer-title", "helped")
    from opconsole.kb.index import log_search
    for query, results, opened in (("сканер в папку", 0, None), ("Сканер в папку", 0, None),
                                   ("printer", 3, None), ("printer", 3, "kb-printer-title")):
        log_search(store, "op1", query, results, opened, None, NOW)
    found = report(store, date(2026, 11, 27), stale_days=365)
    assert found.gaps[0] == {"query": "сканер в папку", "searches": 2, "found_nothing": 2, "not_opened": 0}
    assert found.gaps[1] == {"query": "printer", "searches": 1, "found_nothing": 0, "not_opened": 1}
    assert found.resolving == [{"id": "kb-printer-title", "title": "Printer does not print", "resolved_tickets": 1}]
    assert found.unhelpful == [{"id": "kb-printer-mention", "title": "Workstation checklist", "not_helped": 1,
                                "helped": 0}]
    assert [a["id"] for a in found.stale] == ["kb-old"]
    history = [e.op for e in store.events_for(two.id)]
    assert history.count("ticket.kb") == 3


def test_feedback_on_an_unknown_article_is_refused_and_changes_nothing(desk: Desk, kb_dir: Path):
    import_dir(desk.store, kb_dir, NOW)
    ticket = desk.register(phone="+79161234567", subject="x", channel="phone")
    before = len(desk.store.events_for(ticket.id))
    with pytest.raises(Exception, match="no KB article 'kb-nope'"):
        desk.kb_feedback(ticket.key, "kb-nope", "attached")
    assert len(desk.store.events_for(ticket.id)) == before


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPCONSOLE_OPERATOR": "op1"}
    return subprocess.run([sys.executable, "-m", "opconsole", "--db", str(tmp_path / "cli.db"), *args],
                          capture_output=True, text=True, env=env, check=False)


def test_cli_imports_lists_searches_and_reports(tmp_path: Path, kb_dir: Path):
    listed = cli(tmp_path, "kb", "list", "--json")  # a new store gets the starter KB
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) >= 30
    (kb_dir / "broken.md").write_text("---\ntitle: x\nunknown_key: 1\n---\n", "utf-8")
    imported = cli(tmp_path, "kb", "import", str(kb_dir))
    assert imported.returncode == 1
    assert f"{kb_dir / 'broken.md'}:3: unknown front matter key 'unknown_key'" in imported.stderr
    assert imported.stdout.strip() == "4 added, 0 updated, 0 unchanged, 0 retired, 1 skipped"
    found = cli(tmp_path, "kb", "search", "printer", "--limit", "2", "--json")
    assert found.returncode == 0 and [h["id"] for h in json.loads(found.stdout)][0] == "kb-printer-title"
    short = cli(tmp_path, "kb", "search", "pr")
    assert short.returncode == 2 and short.stderr.startswith("opconsole: the query needs at least 3")
    reported = cli(tmp_path, "kb", "report", "--json")
    assert reported.returncode == 0 and set(json.loads(reported.stdout)) == {"gaps", "resolving", "unhelpful", "stale"}


def test_a_second_file_cannot_take_an_articles_id_but_a_renamed_file_keeps_it(store: Store, kb_dir: Path):
    import_dir(store, kb_dir, NOW)
    copy = kb_dir / "a-copy.md"
    copy.write_text((kb_dir / "kb-password.md").read_text("utf-8").replace("Смена пароля", "Копия"), "utf-8")
    result = import_dir(store, kb_dir, NOW)
    assert [p.message for p in result.problems] == [f"article id 'kb-password' is already used by {kb_dir / 'kb-password.md'}"]
    assert ids(search(store, "смена ")) == ["kb-password"]
    copy.unlink()
    (kb_dir / "kb-password.md").rename(kb_dir / "renamed.md")
    renamed = import_dir(store, kb_dir, NOW)
    assert (renamed.added, renamed.updated, renamed.retired, renamed.problems) == (0, 1, 0, [])
    assert ids(search(store, "смена ")) == ["kb-password"]


def test_a_front_matter_key_with_regex_characters_is_reported_not_raised(store: Store, kb_dir: Path):
    (kb_dir / "odd.md").write_text('---\ntitle: x\n"see (x": 1\n---\nbody\n', "utf-8")
    result = import_dir(store, kb_dir, NOW)
    assert [str(p).removeprefix(str(kb_dir) + "/") for p in result.problems] == [
        "odd.md:3: unknown front matter key 'see (x'; use categories, id, language, owner, scripts, tags, title, "
        "updated"]
    assert result.added == 4
