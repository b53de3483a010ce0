"""The knowledge base in the store: incremental import, ranked search, suggestions for a ticket,
what operators do with articles, and the report on the KB's gaps.

Search runs on FTS5 with bm25, the title weighted above the tags above the body, over text stemmed
by kb.text; the category and language filters apply after the match. Snippets are cut from the
article's own words, so they read as written, with the matched words marked.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from opconsole.domain import category_fit, to_iso
from opconsole.errors import NotFound, Problem
from opconsole.kb.articles import Article, parse_article, plain_text
from opconsole.kb.text import fts_query, index_text, snippet, stems, words

BUNDLED = Path(__file__).with_name("articles")
WEIGHTS = (10.0, 4.0, 1.0)  # bm25 weights: title, tags, body
SUGGEST_TERMS = 24  # words of a ticket's text that make its suggestion query
CANDIDATES = 40  # suggestions are re-ranked by category among this many best matches


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    language: str
    categories: tuple[str, ...]
    snippet: list[tuple[str, bool]]  # (text, is a match)
    rank: float

    def snippet_text(self, mark=lambda word: word) -> str:
        return "".join(mark(text) if hit else text for text, hit in self.snippet)

    def matched(self) -> list[str]:
        return list(dict.fromkeys(text for text, hit in self.snippet if hit))


def import_dir(store, directory: Path, now: datetime, categories: Collection[str] | None = None) -> ImportResult:
    """Index every *.md under `directory`: new and changed files are (re)indexed, files gone since
    the last import retire their articles, and a file whose size and mtime are unchanged is not read."""
    directory = directory.resolve()
    result = ImportResult()
    known = {row[0]: row for row in store.conn.execute(
        "SELECT path, num, id, mtime_ns, size, sha256 FROM kb_articles WHERE retired_at IS NULL "
        "AND (path = ? OR path LIKE ? ESCAPE '\\')", (str(directory), like_prefix(directory)))}
    seen_ids: dict[str, str] = {}
    seen_paths: set[str] = set()
    stamp = to_iso(now)
    with store.write():
        for path in sorted(directory.rglob("*.md")):
            name = str(path)
            seen_paths.add(name)
            info = path.stat()
            old = known.get(name)
            if old and (old[3], old[4]) == (info.st_mtime_ns, info.st_size):
                seen_ids[old[2]] = name
                result.unchanged += 1
                continue
            try:
                raw = path.read_bytes()
                text = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                result.problems.append(Problem(name, 1, f"cannot read the article ({exc})"))
                continue
            digest = hashlib.sha256(raw).hexdigest()
            if old and old[5] == digest:  # touched, not changed
                store.conn.execute("UPDATE kb_articles SET mtime_ns = ?, size = ? WHERE num = ?",
                                   (info.st_mtime_ns, info.st_size, old[1]))
                seen_ids[old[2]] = name
                result.unchanged += 1
                continue
            article, problem = parse_article(name, text, categories)
            if problem is None:
                owner = seen_ids.get(article.id) or other_file_with(store, article.id, name)
                if owner:
                    problem = Problem(name, 1, f"article id {article.id!r} is already used by {owner}")
            if problem is not None:
                result.problems.append(problem)
                continue
            seen_ids[article.id] = name
            added = save_article(store, article, digest, info, stamp)
            if old and old[2] != article.id:  # the file now holds another article: the old one goes
                retire(store, old[1], stamp)
            result.added += added
            result.updated += not added
        for name, row in known.items():
            moved = store.conn.execute("SELECT path FROM kb_articles WHERE num = ?", (row[1],)).fetchone()[0] != name
            if name not in seen_paths and not moved:  # a renamed file's article lives on under its new name
                retire(store, row[1], stamp)
                result.retired += 1
    return result


def other_file_with(store, article_id: str, path: str) -> str | None:
    """The file that holds article `article_id` now, if it is another file and still exists."""
    row = store.conn.execute("SELECT path FROM kb_articles WHERE id = ? AND retired_at IS NULL", (article_id,)).fetchone()
    return row[0] if row and row[0] != path and Path(row[0]).exists() else None


def like_prefix(directory: Path) -> str:
    escaped = str(directory).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + os.sep + "%"


def save_article(store, article: Article, digest: str, info: os.stat_result, stamp: str) -> bool:
    """Insert or replace the article and its index row; True if it is new to the store."""
    values = (article.path, article.title, json.dumps(article.tags, ensure_ascii=False),
              json.dumps(article.categories), article.language, article.updated, article.owner,
              json.dumps(article.scripts), article.body, digest, info.st_mtime_ns, info.st_size, stamp)
    existing = store.conn.execute("SELECT num FROM kb_articles WHERE id = ?", (article.id,)).fetchone()
    if existing:
        num = existing[0]
        store.conn.execute(
            "UPDATE kb_articles SET path = ?, title = ?, tags = ?, categories = ?, language = ?, updated = ?, "
            "owner = ?, scripts = ?, body = ?, sha256 = ?, mtime_ns = ?, size = ?, imported_at = ?, "
            "retired_at = NULL WHERE num = ?", (*values, num))
        store.conn.execute("DELETE FROM kb_fts WHERE rowid = ?", (num,))
    else:
        num = store.conn.execute(
            "INSERT INTO kb_articles (path, title, tags, categories, language, updated, owner, scripts, body, "
            "sha256, mtime_ns, size, imported_at, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*values, article.id)).lastrowid
    store.conn.execute("INSERT INTO kb_fts (rowid, title, tags, body) VALUES (?, ?, ?, ?)",
                       (num, index_text(article.title), index_text(" ".join(article.tags)),
                        index_text(plain_text(article.body))))
    return existing is None


def retire(store, num: int, stamp: str) -> None:
    store.conn.execute("UPDATE kb_articles SET retired_at = ? WHERE num = ?", (stamp, num))
    store.conn.execute("DELETE FROM kb_fts WHERE rowid = ?", (num,))


def ensure_bundled(store, now: datetime, categories: Collection[str] | None = None) -> ImportResult | None:
    """A store without articles gets the bundled starter KB, so the console is useful at once (the check
    and the import are one transaction: two terminals opening a new store import it once)."""
    if store.conn.execute("SELECT 1 FROM kb_articles LIMIT 1").fetchone():
        return None
    with store.write():
        if store.conn.execute("SELECT 1 FROM kb_articles LIMIT 1").fetchone():
            return None
        return import_dir(store, BUNDLED, now, categories)


# --- search -------------------------------------------------------------------------------------------

def search(store, query: str, *, limit: int = 10, category: str | None = None, language: str | None = None) -> list[Hit]:
    """Ranked articles for what was typed; nothing for fewer than 3 characters."""
    expression = fts_query(query)
    if expression is None:
        return []
    return [hit(row, query) for row in matches(store, expression, limit, category, language)]


def matches(store, expression: str, limit: int, category: str | None = None, language: str | None = None, *,
            stemmed: bool = False) -> list:
    """The best `limit` articles for an FTS expression: (id, title, language, categories, body, rank), and
    with `stemmed` the indexed title and the indexed tags and body. The filters apply after the match."""
    extra = ", kb_fts.title, kb_fts.tags || ' ' || kb_fts.body" if stemmed else ""
    sql = (f"SELECT a.id, a.title, a.language, a.categories, a.body, bm25(kb_fts, ?, ?, ?) AS rank{extra} "
           "FROM kb_fts JOIN kb_articles a ON a.num = kb_fts.rowid WHERE kb_fts MATCH ? AND a.retired_at IS NULL")
    params: list = [*WEIGHTS, expression]
    if language:
        sql += " AND a.language = ?"
        params.append(language)
    if category:
        sql += (" AND EXISTS (SELECT 1 FROM json_each(a.categories) c "
                "WHERE c.value = ? OR c.value LIKE ? OR ? LIKE c.value || '.%')")
        params += [category, category + ".%", category]
    sql += " ORDER BY rank LIMIT ?"
    params.append(limit)
    return store.conn.execute(sql, params).fetchall()


def hit(row: tuple, query: str) -> Hit:
    article_id, title, language, categories, body, rank = row[:6]
    return Hit(article_id, title, language, tuple(json.loads(categories)), snippet(plain_text(body), query), rank)


def suggest(store, subject: str, description: str, category: str | None, limit: int = 5) -> list[Hit]:
    """Articles for a ticket before anything is typed. Any of its words may match; the articles of its
    category come first, then those that share the most of its words (in the title above all), then bm25.
    Only the ones shown get a snippet."""
    terms = list(dict.fromkeys(w for w in words(f"{subject} {description}") if len(w) > 2))[:SUGGEST_TERMS]
    if not terms:
        return []
    query = " ".join(terms) + " "  # complete words: no prefixes
    wanted = set(stems(terms))

    def order(row: tuple) -> tuple:
        title, rest = set(row[6].split()), set(row[7].split())
        shared = 2 * len(wanted & title) + len(wanted & (title | rest))
        return -category_fit(category, json.loads(row[3])), -shared, row[5]
    best = sorted(matches(store, fts_query(query, any_term=True), CANDIDATES, stemmed=True), key=order)[:limit]
    return [hit(row, query) for row in best]


@dataclass(frozen=True)
class ArticleView:
    id: str
    title: str
    language: str
    tags: tuple[str, ...]
    categories: tuple[str, ...]
    updated: str | None
    owner: str | None
    scripts: tuple[str, ...]
    body: str


VIEW_COLUMNS = "id, title, language, tags, categories, updated, owner, scripts"


def view_from(row: tuple, body: str = "") -> ArticleView:
    article_id, title, language, tags, categories, updated, owner, scripts = row
    return ArticleView(article_id, title, language, tuple(json.loads(tags)), tuple(json.loads(categories)), updated,
                       owner, tuple(json.loads(scripts)), body)


def article(store, article_id: str) -> ArticleView:
    row = store.conn.execute(f"SELECT {VIEW_COLUMNS}, body FROM kb_articles WHERE id = ? AND retired_at IS NULL",
                             (article_id,)).fetchone()
    if row is None:
        raise NotFound(f"no KB article {article_id!r}; `opconsole kb list` shows them")
    return view_from(row[:-1], row[-1])


def articles(store) -> list[ArticleView]:
    """Every active article, without its body."""
    return [view_from(row) for row in store.conn.execute(
        f"SELECT {VIEW_COLUMNS} FROM kb_articles WHERE retired_at IS NULL ORDER BY id")]


def article_ids(store) -> set[str]:
    return {row[0] for row in store.conn.execute("SELECT id FROM kb_articles WHERE retired_at IS NULL")}


def bundled_ids() -> set[str]:
    """The starter KB's article ids, read from its files (for checking scripts without a store)."""
    ids = set()
    for path in BUNDLED.glob("*.md"):
        found, _problem = parse_article(str(path), path.read_text("utf-8"))
        if found:
            ids.add(found.id)
    return ids


# --- the learning loop -----------------------------------------------------------------------------------

def log_search(store, operator: str, query: str, results: int, opened: str | None, ticket_id: str | None,
               now: datetime) -> None:
    """One search an operator finished: what was typed (case and spacing folded, so the report groups
    the same question), how many articles it found, and which one was opened, if any."""
    with store.write():
        store.conn.execute("INSERT INTO kb_searches (at, operator, query, results, ticket_id, opened) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (to_iso(now), operator, " ".join(query.casefold().split()), results, ticket_id, opened))


FEEDBACK = {"attached": "attached", "helped": "rated helpful", "not_helped": "rated not helpful"}


def add_feedback(store, article_id: str, ticket_id: str, operator: str, kind: str, at: str) -> None:
    """One attach or rating (inside the caller's transaction, with the ticket's event)."""
    if not store.conn.execute("SELECT 1 FROM kb_articles WHERE id = ? AND retired_at IS NULL", (article_id,)).fetchone():
        raise NotFound(f"no KB article {article_id!r}; `opconsole kb list` shows them")
    store.conn.execute("INSERT INTO kb_feedback (article_id, ticket_id, operator, at, kind) VALUES (?, ?, ?, ?, ?)",
                       (article_id, ticket_id, operator, at, kind))


@dataclass(frozen=True)
class Report:
    gaps: list[dict]  # queries that found nothing or whose results nobody opened, most frequent first
    resolving: list[dict]  # articles attached to the most resolved tickets
    unhelpful: list[dict]  # articles rated "did not help"
    stale: list[dict]  # articles not updated within the configured age


def report(store, today: date, stale_days: int, limit: int = 20) -> Report:
    gaps = [{"query": q, "searches": n, "found_nothing": empty, "not_opened": n - empty}
            for q, n, empty in store.conn.execute(
                "SELECT query AS q, count(*) AS n, count(*) FILTER (WHERE results = 0) FROM kb_searches "
                "WHERE opened IS NULL GROUP BY q ORDER BY n DESC, q LIMIT ?", (limit,))]
    resolving = [{"id": a, "title": t, "resolved_tickets": n} for a, t, n in store.conn.execute(
        "SELECT f.article_id, a.title, count(DISTINCT f.ticket_id) AS n FROM kb_feedback f "
        "JOIN tickets t ON t.id = f.ticket_id JOIN kb_articles a ON a.id = f.article_id "
        "WHERE f.kind = 'attached' AND t.status IN ('resolved', 'closed') "
        "GROUP BY f.article_id ORDER BY n DESC, f.article_id LIMIT ?", (limit,))]
    unhelpful = [{"id": a, "title": t, "not_helped": bad, "helped": good} for a, t, bad, good in store.conn.execute(
        "SELECT f.article_id, a.title, count(*) FILTER (WHERE f.kind = 'not_helped') AS bad, "
        "count(*) FILTER (WHERE f.kind = 'helped') FROM kb_feedback f JOIN kb_articles a ON a.id = f.article_id "
        "GROUP BY f.article_id HAVING bad > 0 ORDER BY bad DESC, f.article_id LIMIT ?", (limit,))]
    cutoff = (today - timedelta(days=stale_days)).isoformat()
    stale = [{"id": a, "title": t, "updated": u, "owner": o} for a, t, u, o in store.conn.execute(
        "SELECT id, title, updated, owner FROM kb_articles WHERE retired_at IS NULL "
        "AND (updated IS NULL OR updated < ?) ORDER BY updated, id", (cutoff,))]
    return Report(gaps, resolving, unhelpful, stale)
