"""KB articles as a team keeps them in git: Markdown files with YAML front matter.

    ---
    id: kb-map-network-drive
    title: "Connect a network drive again"
    tags: [network drive, mapping]
    categories: [file_access.drive_mapping]
    language: en
    updated: 2026-09-18
    owner: Service desk
    scripts: [shared-folder-access]
    ---
    Markdown body...

A malformed front matter or an article without a title is reported with file:line and skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass

from opconsole.errors import Problem
from opconsole.kb.text import CYRILLIC

ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
FIELDS = {"id", "title", "tags", "categories", "language", "updated", "owner", "scripts"}
LANGUAGES = ("en", "ru")


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    tags: tuple[str, ...]
    categories: tuple[str, ...]
    language: str
    updated: str | None  # ISO date
    owner: str | None
    scripts: tuple[str, ...]
    body: str
    path: str


def parse_article(path: str, text: str, categories: Collection[str] | None = None) -> tuple[Article | None, Problem | None]:
    """The article in `text`, or the first problem that keeps it out."""
    import yaml

    def problem(line: int, message: str) -> tuple[None, Problem]:
        return None, Problem(path, line, message)

    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return problem(1, "no front matter: the file must start with a line '---', then id, title and the rest")
    end = next((n for n in range(1, len(lines)) if lines[n].strip() == "---"), None)
    if end is None:
        return problem(1, "the front matter is not closed: add a line '---' after it")
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it: 10x faster
        meta = yaml.load("\n".join(lines[1:end]), Loader=loader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None and mark.line >= end - 2 and getattr(exc, "context_mark", None) is not None:
            mark = exc.context_mark  # the error shows at the end: point at what was left open instead
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return problem(mark.line + 2 if mark else 1, f"front matter is not valid YAML: {reason}")
    if not isinstance(meta, dict):
        return problem(2, "front matter must be 'key: value' lines")

    def line_of(key: str) -> int:
        return next((n + 1 for n in range(1, end) if re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*:", lines[n])), 1)

    unknown = sorted(set(map(str, meta)) - FIELDS)
    if unknown:
        return problem(line_of(unknown[0]), f"unknown front matter key {unknown[0]!r}; use {', '.join(sorted(FIELDS))}")
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        return problem(line_of("title") if "title" in meta else 1, "the article has no title: add title: \"...\"")
    article_id = meta.get("id", path.rsplit("/", 1)[-1].removesuffix(".md"))
    if not isinstance(article_id, str) or not ID.match(article_id):
        return problem(line_of("id"), "id must be lowercase letters, digits, '-' and '_', e.g. kb-map-network-drive")
    lists = {}
    for key in ("tags", "categories", "scripts"):
        value = meta.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str | int) and str(v).strip() for v in value):
            return problem(line_of(key), f"{key} must be a list, e.g. {key}: [one, two]")
        lists[key] = tuple(str(v).strip() for v in value)
    if categories is not None:
        for category in lists["categories"]:
            if category.replace("/", ".") not in categories:
                return problem(line_of("categories"), f"unknown category {category!r}; `opconsole category list` "
                                                      "shows them")
    language = meta.get("language") or ("ru" if len(CYRILLIC.findall(text.casefold())) > len(text) / 10 else "en")
    if language not in LANGUAGES:
        return problem(line_of("language"), f"language must be one of {', '.join(LANGUAGES)}")
    updated = meta.get("updated")
    if updated is not None:
        if isinstance(updated, str):
            try:
                updated = dt.date.fromisoformat(updated)
            except ValueError:
                return problem(line_of("updated"), "updated must be a date: YYYY-MM-DD")
        if not isinstance(updated, dt.date):
            return problem(line_of("updated"), "updated must be a date: YYYY-MM-DD")
        updated = updated.isoformat()[:10]
    owner = meta.get("owner")
    if owner is not None and not isinstance(owner, str):
        return problem(line_of("owner"), "owner must be text: the team that keeps the article")
    body = "\n".join(lines[end + 1:]).strip()
    return Article(article_id, title.strip(), lists["tags"], tuple(c.replace("/", ".") for c in lists["categories"]),
                   language, updated, owner, lists["scripts"], body, path), None


def plain_text(markdown: str) -> str:
    """The body as words to show in a snippet: Markdown marks and link targets dropped."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.DOTALL)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s{0,3}(#+|[-*+]|\d+\.)\s+", "", text, flags=re.MULTILINE)
    return re.sub(r"[*_`>|]+", "", text)
