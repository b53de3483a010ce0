"""Words for the KB index: tokens, Snowball stems for English and Russian, safe FTS5 queries, snippets.

SQLite's FTS5 cannot call a Python tokenizer through the standard sqlite3 module, so the index
stores text already stemmed here, and every query is stemmed the same way. Each word is stemmed by
its alphabet (Cyrillic: Russian, Latin: English), which is the language detection a query needs:
"пароль VPN" stems both words correctly, and so does an English product name in a Russian article.
"""

from __future__ import annotations

import re
from functools import lru_cache

WORD = re.compile(r"\w+", re.UNICODE)
CYRILLIC = re.compile(r"[а-яё]")
LATIN_CONSONANTS = set("bcdfghjklmnpqrstvwxz")
MIN_QUERY_CHARS = 3
SNIPPET_WORDS = 24


@lru_cache(maxsize=2)
def stemmer(language: str):
    import Stemmer  # PyStemmer: the Snowball stemmers in C

    return Stemmer.Stemmer(language)


def words(text: str) -> list[str]:
    return WORD.findall(text.casefold())


def stems(words_: list[str]) -> list[str]:
    """Index forms of lowercase words, one stemWords call per alphabet (the index build stems millions)."""
    out = list(words_)
    by_language: dict[str, list[int]] = {"russian": [], "english": []}
    for i, word in enumerate(words_):
        if CYRILLIC.search(word):
            by_language["russian"].append(i)
        elif word.isascii() and not word.isdigit():
            by_language["english"].append(i)
    for language, positions in by_language.items():
        if positions:
            found = stemmer(language).stemWords([words_[i].replace("ё", "е") for i in positions])
            for i, stemmed in zip(positions, found):
                out[i] = agent_noun(stemmed) if language == "english" else stemmed
    return out


def agent_noun(stemmed: str) -> str:
    """Snowball keeps agent nouns apart from their verb (printer / print, scanner / scan); a service
    desk's searches need them together."""
    if len(stemmed) > 5 and stemmed.endswith("er"):
        stemmed = stemmed[:-2]
        if len(stemmed) > 3 and stemmed[-1] == stemmed[-2] and stemmed[-1] in LATIN_CONSONANTS:
            stemmed = stemmed[:-1]
    return stemmed


def index_text(text: str) -> str:
    """What the FTS table stores for `text`: its stems, space-separated."""
    return " ".join(stems(words(text)))


def fts_query(query: str, *, any_term: bool = False) -> str | None:
    """An FTS5 MATCH expression for what the operator typed, or None if it is too short to rank.

    Every term is a quoted string of word characters, so nothing typed can be read as FTS syntax:
    quotes, `*`, `-`, `:`, parentheses, NEAR, AND, OR and NOT become plain words. The last term,
    still being typed, also matches as a prefix."""
    terms = words(query)
    if sum(len(t) for t in terms) < MIN_QUERY_CHARS:
        return None
    # one- and two-letter words ("в", "не", "of") only narrow the match; keep the last, still typed
    terms = [t for t in terms[:-1] if len(t) > 2] + terms[-1:]
    parts = [f'"{s}"' for s in stems(terms)]
    if not query[-1:].isspace() and len(terms[-1]) >= 2:
        parts[-1] = f'({parts[-1]} OR "{terms[-1]}"*)'
    return (" OR " if any_term else " AND ").join(parts)


def snippet(text: str, query: str, width: int = SNIPPET_WORDS) -> list[tuple[str, bool]]:
    """The passage of `text` where the query's words are densest, as (piece, is a match) pairs."""
    typed = words(query)
    wanted = set(stems(typed))
    prefix = typed[-1] if typed and not query[-1:].isspace() and len(typed[-1]) >= 2 else None
    tokens = re.findall(r"\w+|\W+", text)
    positions = [i for i, token in enumerate(tokens) if WORD.fullmatch(token)]
    if not positions:
        return []
    found = stems([tokens[i].casefold() for i in positions])
    hit = [s in wanted or (prefix is not None and tokens[i].casefold().startswith(prefix))
           for i, s in zip(positions, found)]
    start = densest_window(hit, width)
    end = min(start + width, len(positions))
    hits = {positions[n] for n in range(start, end) if hit[n]}
    pieces = [("… ", False)] if start > 0 else []
    for i in range(positions[start], positions[end - 1] + 1):
        pieces.append((re.sub(r"\s+", " ", tokens[i]), i in hits))
    if end < len(positions):
        pieces.append((" …", False))
    return pieces


def densest_window(hits: list[bool], width: int) -> int:
    """The first word of the `width`-word window with the most hits (the earliest among equals)."""
    best = count = sum(hits[:width])
    start = 0
    for n in range(1, max(len(hits) - width, 0) + 1):
        count += hits[n + width - 1] - hits[n - 1]
        if count > best:
            best, start = count, n
    return start
