"""The knowledge base at 20k articles: index build, search, re-import of an unchanged folder.

Targets (issue), with 20k generated articles of ~300 words, half English and half Russian:
  1. index build (`import_dir` into an empty store, the FTS index included) <= 30 s;
  2. search p95 <= 20 ms for one- and two-term queries of 3+ characters (the last term also as a
     prefix, as the lookup pane sends it while the operator types);
  3. re-import of the unchanged folder <= 5 s;
  4. in the console, results on screen <= 300 ms (p95) after the last keystroke of a query.

    .venv/bin/python benchmarks/bench_kb.py [--articles N] [--queries N] [--typed N] [--skip-console]

Part 4 runs the real `opconsole` command on a store holding the 20k articles, with bench_console's
recording terminal driver: keys go in as the terminal driver sends them, one character at a time,
60-120 ms apart; a query's time runs from the app taking its last key to the write of the first
frame whose screen shows the first result's title in the results list (or the "no article" line).
The same run times each typed character's echo in the search box.

The articles are made once (benchmarks/.data/kb-N/, kept) from the words of the bundled starter KB,
so the vocabulary, the word lengths and the mix of alphabets are those of real articles: each body
is a random walk through the starter KB's sentences, its title six words of one of them. Every run
imports them into a fresh store.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import _common
from _common import data_dir

TARGET_BUILD_S = 30.0
TARGET_SEARCH_P95_MS = 20.0
TARGET_REIMPORT_S = 5.0
TARGET_ON_SCREEN_MS = 300.0
GENERATOR_VERSION = "3"


def sentences_by_language() -> dict[str, list[str]]:
    from opconsole.kb.articles import parse_article, plain_text
    from opconsole.kb.index import BUNDLED

    found: dict[str, list[str]] = {"en": [], "ru": []}
    for path in sorted(BUNDLED.glob("*.md")):
        article, _problem = parse_article(str(path), path.read_text("utf-8"))
        if article:
            text = plain_text(article.body)
            found[article.language] += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.split()) > 3]
    return found


def generated_dir(count: int) -> Path:
    """N articles, ~300 words each, half in each language; made once and kept."""
    directory = data_dir() / f"kb-{count}"
    stamp = directory / ".generator"
    if stamp.exists() and stamp.read_text() == GENERATOR_VERSION:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    rng = random.Random(20)
    sentences = sentences_by_language()
    categories = ["printing.not_printing", "vpn.no_connect", "accounts.password_reset", "mail.archive_pst",
                  "network.site_down", "pos.register_wont_start", "file_access.no_access", "workstation.slow"]
    progress = _common.Progress("writing articles", count)
    for n in range(count):
        language = "ru" if n % 2 else "en"
        pool = sentences[language]
        words: list[str] = []
        while len(words) < 300:
            words += rng.choice(pool).split()
        title = " ".join(rng.choice(pool).split()[:6]).strip(".,:;«»\"'")
        tags = sorted({w.strip(".,:;«»()\"'").lower() for w in rng.sample(words, 4)} - {""})
        body = " ".join(words)
        (directory / f"kb-gen-{n:05d}.md").write_text(
            f"---\nid: kb-gen-{n:05d}\ntitle: {json.dumps(title, ensure_ascii=False)}\ntags: [{', '.join(json.dumps(t, ensure_ascii=False) for t in tags)}]\n"
            f"categories: [{rng.choice(categories)}]\nlanguage: {language}\nupdated: 2026-0{1 + n % 9}-15\n"
            f"owner: Service desk\n---\n\n{body}\n", "utf-8")
        progress(n + 1)
    stamp.write_text(GENERATOR_VERSION)
    return directory


def queries(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, query): one- and two-term queries of words from the articles, half of the last terms cut
    short as if still being typed."""
    sentences = sentences_by_language()
    vocabulary = sorted({w.strip(".,:;«»()\"'").lower() for lang in sentences.values() for s in lang for w in s.split()
                         if len(w.strip(".,:;«»()\"'")) >= 4 and w.strip(".,:;«»()\"'").isalpha()})
    out = []
    for n in range(count):
        terms = rng.sample(vocabulary, 1 + n % 2)
        query = " ".join(terms)
        if n % 4 >= 2:  # still typing the last word
            query = query[: max(len(query) - rng.randint(1, 3), len(query) - len(terms[-1]) + 3)]
        out.append((f"{1 + n % 2} term(s)", query))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--typed", type=int, default=40, help="queries typed into the console's KB pane")
    parser.add_argument("--skip-console", action="store_true")
    args = parser.parse_args()

    from opconsole.kb.index import import_dir, search
    from opconsole.store import Store

    _common.header(f"bench_kb: {args.articles:,} generated articles (~300 words, half English, half Russian)")
    config = _common.bench_config()
    directory = generated_dir(args.articles)
    size = sum(p.stat().st_size for p in directory.glob("*.md"))
    print(f"  articles: {directory.relative_to(_common.ROOT)} ({size / 1e6:.0f} MB)")
    store_path = data_dir() / "kb-bench.db"
    _common.remove_store(store_path)
    now = datetime(2026, 11, 27, tzinfo=timezone.utc)  # noqa: UP017
    results = []
    with Store.open(store_path, site_prefix="MSK") as store:
        start = time.perf_counter()
        built = import_dir(store, directory, now, config.categories)
        build_s = time.perf_counter() - start
        print(f"\n1. index build: {built.added:,} articles added in {build_s:.1f} s "
              f"({built.added / build_s:,.0f} articles/s), {len(built.problems)} skipped")
        for problem in built.problems[:3]:
            print(f"    skipped: {problem}")
        results.append({"label": "index build of 20k articles <= 30 s", "value": build_s,
                        **_common.verdict("build", build_s, TARGET_BUILD_S, "s", "time")})

        rng = random.Random(7)
        plan = queries(args.queries, rng)
        for _kind, query in plan[:20]:  # warm-up: page cache, stemmers
            search(store, query)
        times: dict[str, list[float]] = {}
        found = []
        for kind, query in plan:
            t = time.perf_counter()
            hits = search(store, query)
            times.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
            found.append(len(hits))
        print(f"\n2. search, {len(plan)} queries (limit 10, snippets included); "
              f"{sum(1 for f in found if f) / len(found):.0%} found something, median {sorted(found)[len(found) // 2]} hits")
        everything = [t for values in times.values() for t in values]
        results.append(_common.report_latency("all queries", everything, "ms", target=TARGET_SEARCH_P95_MS))
        for kind, values in sorted(times.items()):
            _common.report_latency(f"  {kind}", values, "ms")
        print("    examples: " + "; ".join(f"{q!r}" for _k, q in plan[:6]))

        start = time.perf_counter()
        again = import_dir(store, directory, now, config.categories)
        reimport_s = time.perf_counter() - start
        print(f"\n3. re-import of the unchanged folder: {again.unchanged:,} unchanged, {again.updated} updated, "
              f"{again.retired} retired in {reimport_s:.2f} s")
        results.append({"label": "re-import unchanged <= 5 s", "value": reimport_s,
                        **_common.verdict("re-import", reimport_s, TARGET_REIMPORT_S, "s", "time")})
        print(f"  store file: {store_path.stat().st_size / 1e6:.0f} MB")
    if not args.skip_console:
        results += on_screen(store_path, args.typed)
    _common.remove_store(store_path)
    _common.footer(results, "kb")


TYPED = ["принтер не печатает", "vpn не подключается", "пароль", "outlook archive", "сетевой диск",
         "замятие бумаги", "кэш браузера", "касса не включается", "wi-fi", "scan to folder", "ОФД чеки",
         "teams microphone", "блокировка учётной записи", "printer queue", "роутер лампочки", "mailbox full",
         "очередь печати", "proxy settings", "резервный канал", "временный пароль"]


def on_screen(store_path: Path, count: int) -> list[dict]:
    """Part 4: the console on the 20k-article store, typing into the KB pane."""
    import bench_console
    from opconsole.widgets.kb_pane import DEBOUNCE

    queries_typed = (TYPED * (count // len(TYPED) + 1))[:count]
    print(f"\n4. the console on this store: {len(queries_typed)} queries typed into the KB pane, character by "
          "character (terminal 180x50)", flush=True)
    found = bench_console.run_scenario("kb", store_path, (180, 50), {"seed": 3, "queries": queries_typed},
                                       timeout=600)
    if "error" in found:
        print(f"  the console run failed: {found['error']}")
        return [{"label": "results on screen <= 300 ms", "met": False}]

    def ms(a, b):
        return 1000 * (b - a)

    typed = [p for p in found["queries"] if p["t_content"]]
    lost = len(found["queries"]) - len(typed)
    values = [ms(p["t_dispatch"], p["t_content"]) for p in typed] + [5000.0] * lost
    if lost:
        print(f"  {lost} queries without their results within 5 s (counted as 5000 ms)")
    r = _common.report_latency("last keystroke -> frame showing the results", values, "ms",
                               target=TARGET_ON_SCREEN_MS)
    r["label"] = "KB results on screen <= 300 ms after the last keystroke"
    keys = [p for p in found["keys"] if p["t_content"]]
    _common.report_latency("each keystroke -> frame showing it in the search box (typing while searches run)",
                           [ms(p["t_dispatch"], p["t_content"]) for p in keys], "ms")
    print(f"    results per query: median {sorted(p['target'] or 0 for p in typed)[len(typed) // 2]}; screen "
          f"checks retried: {sum(p['verify_failures'] for p in typed)}; the pane waits {DEBOUNCE * 1000:.0f} ms "
          "after a keystroke before it searches")
    print(f"  RSS at the end: {found['mem_end']['VmRSS']:.0f} MB")
    return [r]


if __name__ == "__main__":
    main()
