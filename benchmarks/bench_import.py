"""Bulk import: 100k tickets with their events through opconsole.exchange.import_file.

Target (issue): >= 5,000 tickets/s into a fresh store, median of 3 runs.

    .venv/bin/python benchmarks/bench_import.py [--tickets N] [--runs R]

The JSON-lines file is generated directly in the export format (see _gen.write_export) and kept in
benchmarks/.data/ for later runs. Before timing, a small sample from the same generator is imported
and checked through the store API (ticket, events, contact, links as `ticket show --json` shows
them) and by exporting it again, which must reproduce the file byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _common
import _gen
from _common import ROOT, VENV_PYTHON, data_dir, remove_store

TARGET_TICKETS_PER_S = 5_000


def validate_sample(config) -> bool:
    """Import a small generated file and check it the way `ticket show --json` would see it."""
    from opconsole.cli import contact_json, ticket_json
    from opconsole.exchange import export_lines, import_file
    from opconsole.store import Store

    sample = data_dir() / "import-sample.jsonl"
    counts = _gen.write_export(sample, 300, config, seed=99)
    db = data_dir() / "import-sample.db"
    remove_store(db)
    problems: list[str] = []
    with Store.open(db, site_prefix=_gen.PREFIX) as store:
        report = import_file(store, sample)
        if report.problems:
            problems += report.problems[:5]
        if report.added != counts["records"]:
            problems.append(f"added {report.added} of {counts['records']} records")
        records = [json.loads(line) for line in sample.read_text("utf-8").splitlines()]
        by_type: dict[str, list[dict]] = {}
        for record in records:
            by_type.setdefault(record["type"], []).append(record)
        events_of: dict[str, list[dict]] = {}
        for event in by_type["event"]:
            events_of.setdefault(event["entity_id"], []).append(event)
        statuses: dict[str, int] = {}
        shown = None
        for source in by_type["ticket"]:
            ticket = store.ticket(source["key"])
            statuses[ticket.status.value] = statuses.get(ticket.status.value, 0) + 1
            events = store.events_for(ticket.id)
            contact = store.contact(ticket.contact_id) if ticket.contact_id else None
            links = store.links_of(ticket.id)
            shown = {**ticket_json(ticket), "contact": contact_json(contact) if contact else None,
                     "links": links, "events": [e.as_dict() for e in events]}
            versions = [e.version for e in events if e.version is not None]
            if versions != list(range(1, ticket.version + 1)):
                problems.append(f"{ticket.key}: event versions {versions} for ticket version {ticket.version}")
            if len(events) < 3:
                problems.append(f"{ticket.key}: only {len(events)} events")
            if [e.as_dict() for e in events] != [{k: v for k, v in e.items() if k != "type"}
                                                 for e in events_of[ticket.id]]:
                problems.append(f"{ticket.key}: events differ from the file")
            for name, value in ticket_json(ticket).items():
                expected = source["fields"] if name == "fields" else source.get(name)
                if name == "first_contact_resolution" and expected is not None:
                    expected = bool(expected)
                if value != expected:
                    problems.append(f"{ticket.key}: {name} is {value!r}, file has {expected!r}")
            if contact and contact.phones != next(c["phones"] for c in by_type["contact"] if c["id"] == contact.id):
                problems.append(f"{ticket.key}: contact phones differ")
        again = list(export_lines(store))
        original = sample.read_text("utf-8").splitlines()
        if again != original:
            first = next((i for i, (a, b) in enumerate(zip(again, original)) if a != b), min(len(again), len(original)))
            problems.append(f"export of the imported sample differs from the generated file "
                            f"({len(again)} vs {len(original)} lines; first difference at line {first + 1}: "
                            f"export {again[first][:160] if first < len(again) else None!r} vs "
                            f"file {original[first][:160] if first < len(original) else None!r})")
        key = by_type["ticket"][-1]["key"]
    # one literal `opconsole ticket show --json` on the sample, compared with the API view above
    env = {**os.environ, "OPCONSOLE_OPERATOR": "admin", "OPCONSOLE_CONFIG": str(_common.empty_config())}
    out = subprocess.run([str(VENV_PYTHON), "-m", "opconsole", "--db", str(db), "ticket", "show", key, "--json"],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0 or json.loads(out.stdout) != json.loads(json.dumps(shown)):
        problems.append(f"`opconsole ticket show {key} --json` differs from the API view: {out.stderr.strip()}")
    per_ticket = counts["ticket_events"] / counts["tickets"]
    print(f"  sample: {counts['tickets']} tickets, {counts['events']} events ({per_ticket:.1f} per ticket), "
          f"{counts['contacts']} contacts, {counts['links']} links; statuses {statuses}")
    if problems:
        print("  FORMAT VALIDATION FAILED:")
        for problem in problems[:20]:
            print(f"    {problem}")
        return False
    print("  format validation OK: all records imported, every ticket's versioned events are 1..version "
          "(>= 3 events each),\n  `ticket show --json` view matches the file, and re-export reproduces "
          "the file byte for byte")
    return True


def timed_import(path: Path, counts: dict, label: str) -> dict:
    from opconsole.exchange import import_file
    from opconsole.store import Store

    db = data_dir() / "import-run.db"
    remove_store(db)
    t_open = time.perf_counter()
    store = Store.open(db, site_prefix=_gen.PREFIX)
    opened = time.perf_counter() - t_open
    start, cpu = time.perf_counter(), time.process_time()
    report = import_file(store, path)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    store.close()
    size = db.stat().st_size
    ok = report.added == counts["records"] and not report.problems
    rate = counts["tickets"] / seconds
    print(f"  {label}: {seconds:6.1f} s wall ({cpu:.1f} s CPU) -> {rate:,.0f} tickets/s "
          f"({counts['tickets'] / cpu:,.0f}/s of CPU), {counts['records'] / seconds:,.0f} records/s "
          f"(fresh store opened in {opened * 1000:.0f} ms; db {size / 1e6:.0f} MB; "
          f"{report.added:,} added, {len(report.problems)} problems){'' if ok else '  IMPORT INCOMPLETE'}",
          flush=True)
    remove_store(db)
    return {"seconds": seconds, "cpu": cpu, "rate": rate, "ok": ok}


def diagnose(config, n_tickets: int) -> None:
    """Where an import spends its time: SQL statement kinds (wrapped connection) and a profile."""
    import cProfile
    import pstats

    from opconsole.exchange import import_file
    from opconsole.store import Store

    path, counts = _gen.generated_file(n_tickets, config, seed=5)
    db = data_dir() / "import-diag.db"
    remove_store(db)
    store = Store.open(db, site_prefix=_gen.PREFIX)
    timed = _common.install_timer(store, _common.classify_sql)
    start = time.perf_counter()
    import_file(store, path)
    total = time.perf_counter() - start
    _common.uninstall_timer(store, timed)
    store.close()
    print(f"  statement breakdown, {n_tickets:,}-ticket file ({counts['records']:,} records), "
          f"{total:.1f} s wall incl. wrapper overhead = {n_tickets / total:,.0f} tickets/s:")
    timed.table(total)

    remove_store(db)
    store = Store.open(db, site_prefix=_gen.PREFIX)
    profiler = cProfile.Profile()
    profiler.enable()
    import_file(store, path)
    profiler.disable()
    store.close()
    remove_store(db)
    print("  cProfile of the same import, top 15 by own time:")
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]
    total_tt = sum(v[2] for v in stats.stats.values())
    for (filename, line, func), (cc, nc, tt, ct, _) in rows:
        where = f"{Path(filename).name}:{line}" if line else filename
        print(f"    {tt:7.2f} s own {100 * tt / total_tt:5.1f}%  {ct:7.2f} s cum  {nc:>9,} calls  {func}  ({where})")

    wanted = {"import_file": "exchange.py",
              "load_event": "exchange.py", "load_ticket": "exchange.py", "load_contact": "exchange.py",
              "insert_or_compare": "exchange.py", "ticket_from_row": "store.py", "ticket_to_row": "store.py",
              "loads": "__init__.py", "dumps": "__init__.py"}
    cumulative = []
    for (filename, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        if func not in wanted or Path(filename).name != wanted[func]:
            continue
        if func in ("loads", "dumps") and Path(filename).parent.name != "json":
            continue
        cumulative.append((ct, nc, func, Path(filename).name))
    print("  cumulative time of the import's main functions (profiled):")
    for ct, nc, func, name in sorted(cumulative, reverse=True):
        print(f"    {ct:6.2f} s cum  {nc:>8,} calls  {1e6 * ct / nc:7.1f} us/call  {func} ({name})")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-diagnose", action="store_true", help="skip the statement breakdown and profile")
    args = parser.parse_args()

    _common.header(f"bench_import: import_file of {args.tickets:,} tickets with their events into a fresh store")
    config = _common.bench_config()
    if not validate_sample(config):
        print("RESULT: generator output invalid; no figures")
        sys.exit(1)
    path, counts = _gen.generated_file(args.tickets, config, seed=7)
    print(f"  file: {counts['tickets']:,} tickets, {counts['events']:,} events "
          f"({counts['ticket_events'] / counts['tickets']:.2f} ticket events per ticket, "
          f"{counts['versioned_events']:,} versioned), {counts['contacts']:,} contacts, {counts['operators']} "
          f"operators, {counts['links']:,} links; {counts['records']:,} records, {counts['bytes'] / 1e6:.0f} MB")
    _common.flush()
    runs = [timed_import(path, counts, f"run {i + 1}/{args.runs}") for i in range(args.runs)]
    rates = [r["rate"] for r in runs]
    seconds = [r["seconds"] for r in runs]
    print()
    result = _common.report_latency("import wall time per run", seconds, "s")
    print(f"  tickets/s per run: {', '.join(f'{r:,.0f}' for r in rates)}  "
          f"(spread {min(rates):,.0f}..{max(rates):,.0f}, {100 * (max(rates) - min(rates)) / max(rates):.0f}%)")
    import statistics
    cpu_rates = [counts["tickets"] / r["cpu"] for r in runs]
    print(f"  tickets per CPU-second per run (less sensitive to other load): "
          f"{', '.join(f'{r:,.0f}' for r in cpu_rates)}")
    median_rate = statistics.median(rates)
    print(f"  median: {median_rate:,.0f} tickets/s over N={len(rates)} runs of {counts['tickets']:,} tickets")
    results = [{"label": "import tickets/s (median of runs)", "n": len(rates), "median": median_rate,
                "runs": rates,
                **_common.verdict("import tickets/s (median of runs)", median_rate, TARGET_TICKETS_PER_S,
                                  "tickets/s", "median", lower_is_better=False)},
               result]
    if not all(r["ok"] for r in runs):
        print("  NOTE: at least one import did not add every record; see above")
    if not args.no_diagnose:
        print()
        print("diagnostics (not part of the figure):")
        diagnose(config, 10_000)
    _common.footer(results, "import")


if __name__ == "__main__":
    main()
