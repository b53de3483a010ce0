"""Command-line start-up: `opconsole ticket list --json` on a store with 50 open tickets.

Measures a fresh process from start to exit (subprocess, time.perf_counter around it), the way an
operator's script or the console's helpers call it.

Target (issue): <= 0.5 s (judged on p95; the median is reported too), 20 runs.

    .venv/bin/python benchmarks/bench_cli_start.py [--runs N]

Also prints the top 10 imports by cumulative time (`python -X importtime`), interpreter-only and
import-only baselines, and the time of each step of the command measured inside one process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common
from _common import ROOT, VENV_PYTHON, data_dir, remove_store

TARGET_S = 0.5
OPCONSOLE = ROOT / ".venv" / "bin" / "opconsole"

PHASES = r"""
import time, json
t = [("start", time.perf_counter())]
import opconsole.cli as cli
t.append(("import opconsole.cli (click, errors)", time.perf_counter()))
from opconsole.config import load_config
t.append(("import opconsole.config (tomllib, zoneinfo, sla)", time.perf_counter()))
config = load_config(None)
t.append(("load_config (parse defaults.toml, build)", time.perf_counter()))
from opconsole.paths import store_path
t.append(("import opconsole.paths", time.perf_counter()))
from opconsole.store import Store
t.append(("import opconsole.store (sqlite_utils, domain/phonenumbers, uuid6)", time.perf_counter()))
from sqlite_utils.plugins import ensure_plugins_loaded
ensure_plugins_loaded()
t.append(("sqlite_utils plugin entry-point scan (Database() does it once)", time.perf_counter()))
store = Store.open(store_path(DB))
t.append(("Store.open (connect, pragmas, checkpoint lock)", time.perf_counter()))
found = store.tickets(open_only=True, limit=200)
t.append(("store.tickets(open_only=True) -> Ticket objects", time.perf_counter()))
out = json.dumps([cli.ticket_json(x) for x in found], ensure_ascii=False, indent=2)
t.append(("ticket_json + json.dumps", time.perf_counter()))
store.close()
t.append(("close", time.perf_counter()))
print(json.dumps([(name, (b - a) * 1000) for (_, a), (name, b) in zip(t, t[1:])]))
"""


def cli_env() -> dict[str, str]:
    """No user config file (an empty XDG config dir), a known operator, the store given by --db.

    PYTHONDONTWRITEBYTECODE is dropped: an installed opconsole runs from byte-compiled modules (pip compiles
    them on install, as it did textual's), and this development checkout's modules get theirs on the
    warm-up run. With it set, every start would compile opconsole's sources again (~25 ms here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPCONSOLE_") and k != "PYTHONDONTWRITEBYTECODE"}
    xdg = data_dir() / "xdg"
    (xdg / "config").mkdir(parents=True, exist_ok=True)
    (xdg / "data").mkdir(parents=True, exist_ok=True)
    env.update({"OPCONSOLE_OPERATOR": "admin", "XDG_CONFIG_HOME": str(xdg / "config"),
                "XDG_DATA_HOME": str(xdg / "data")})
    return env


def cli_store(config) -> Path:
    """A store with 50 open tickets (registered through the Desk; some taken, some waiting)."""
    from datetime import datetime, timedelta, timezone

    import _gen
    from opconsole.services import Desk
    from opconsole.store import Store

    path = data_dir() / "cli-50.db"
    meta_path = data_dir() / "cli-50.meta.json"
    wanted = {"tickets": 50, "schema": _common.schema_fingerprint()}
    if path.exists() and meta_path.exists() and json.loads(meta_path.read_text("utf-8")) == wanted:
        print(f"  reusing {path.relative_to(ROOT)}")
        return path
    remove_store(path)
    import random
    rng = random.Random(50)
    now = [datetime.now(timezone.utc) - timedelta(hours=6)]
    with Store.open(path, site_prefix=_gen.PREFIX) as store:
        desk = Desk(store, config, "admin", clock=lambda: now[0])
        desk.ensure_first_operator()
        desk.add_operator("op01", "Operator One", "operator", [])
        worker = Desk(store, config, "op01", clock=lambda: now[0])
        used: set[str] = set()
        subjects = [s for group in _gen.SUBJECTS.values() for s in group]
        for i in range(50):
            now[0] += timedelta(minutes=rng.uniform(1, 7))
            ticket = desk.register(subject=rng.choice(subjects), phone=_gen.phone_number(rng, used),
                                   description=rng.choice(_gen.DESCRIPTIONS),
                                   impact=rng.choice(["low", "medium", "high"]),
                                   urgency=rng.choice(["low", "medium", "high"]),
                                   contact_name=f"{rng.choice(_gen.FIRST)} {rng.choice(_gen.LAST)}")
            if i % 3 == 0:
                worker.take(ticket.key)
                if i % 9 == 0:
                    worker.wait(ticket.key, "caller sends a photo")
    Path(f"{path}-checkpoint.lock").unlink(missing_ok=True)
    meta_path.write_text(json.dumps(wanted), "utf-8")
    print(f"  built {path.relative_to(ROOT)}")
    return path


def timed_runs(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, cwd=data_dir())
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return times


def importtime(argv: list[str], env: dict[str, str]) -> list[tuple[int, int, str]]:
    done = subprocess.run([str(VENV_PYTHON), "-X", "importtime", *argv], capture_output=True, text=True,
                          env=env, cwd=data_dir())
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (.*)$", line)
        if match:
            rows.append((int(match.group(1)), int(match.group(2)), match.group(3)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    _common.header(f"bench_cli_start: `opconsole ticket list --json` on a 50-open-ticket store, {args.runs} runs")
    config = _common.bench_config()
    db = cli_store(config)
    env = cli_env()
    argv = [str(OPCONSOLE), "--db", str(db), "ticket", "list", "--json"]
    check = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=data_dir())
    listed = json.loads(check.stdout) if check.returncode == 0 else None
    if not listed or len(listed) != 50:
        print(f"  the command did not list 50 tickets: rc={check.returncode} {check.stderr[-300:]}")
        print("RESULT: could not measure")
        sys.exit(1)
    print(f"  command: opconsole --db {db.relative_to(ROOT)} ticket list --json  -> {len(listed)} tickets, "
          f"{len(check.stdout):,} bytes of JSON")
    timed_runs(argv, 2, env)  # warm-up: page cache, .pyc files
    times = timed_runs(argv, args.runs, env)
    print()
    result = _common.report_latency("process start to exit", [t * 1000 for t in times], "ms",
                                    target=TARGET_S * 1000)
    med = statistics.median(times)
    print(f"    median {med:.3f} s = {med / TARGET_S:.2f}x target -> {'met' if med <= TARGET_S else 'MISSED'} "
          "on the median too")

    print()
    print("baselines (N=10 each):")
    python = str(VENV_PYTHON)
    bare = timed_runs([python, "-c", "pass"], 10, env)
    _common.report_latency("python -c pass (interpreter start-up and exit)", [t * 1000 for t in bare], "ms")
    imp = timed_runs([python, "-c", "import opconsole.cli"], 10, env)
    _common.report_latency("python -c 'import opconsole.cli'", [t * 1000 for t in imp], "ms")
    full_imports = "import opconsole.cli, opconsole.config, opconsole.store, opconsole.paths"
    imp_all = timed_runs([python, "-c", full_imports], 10, env)
    _common.report_latency(f"python -c '{full_imports}'", [t * 1000 for t in imp_all], "ms")

    print()
    print("steps inside one process (median of 5 runs, ms):")
    samples: dict[str, list[float]] = {}
    for _ in range(5):
        out = subprocess.run([python, "-c", f"DB = {str(db)!r}\n" + PHASES], capture_output=True, text=True,
                             env=env, cwd=data_dir())
        if out.returncode != 0:
            print(f"    phase script failed: {out.stderr[-500:]}")
            break
        for name, ms in json.loads(out.stdout):
            samples.setdefault(name, []).append(ms)
    for name, values in samples.items():
        print(f"    {statistics.median(values):8.1f}  {name}")
    if samples:
        print(f"    {sum(statistics.median(v) for v in samples.values()):8.1f}  (sum; plus interpreter start-up "
              f"~{statistics.median(bare) * 1000:.0f} ms)")

    print()
    rows = importtime(argv, env)
    modules = {name.strip() for _, _, name in rows}
    print(f"python -X importtime {OPCONSOLE.name} ... ticket list --json: {len(rows)} modules imported; "
          f"textual imported: {'textual' in modules}")
    print("  top 10 by cumulative time (us; indentation = nesting as importtime prints it):")
    print(f"    {'cumulative':>10}  {'self':>8}  module")
    for self_us, cum_us, name in sorted(rows, key=lambda r: -r[1])[:10]:
        print(f"    {cum_us:>10,}  {self_us:>8,}  {name}")
    print("  top 10 by own (self) time:")
    for self_us, cum_us, name in sorted(rows, key=lambda r: -r[0])[:10]:
        print(f"    {cum_us:>10,}  {self_us:>8,}  {name.strip()}")
    top_level: dict[str, int] = {}
    for self_us, _cum, name in rows:
        package = name.strip().split(".")[0]
        top_level[package] = top_level.get(package, 0) + self_us
    print("  own time summed per top-level package (us): " + ", ".join(
        f"{pkg} {us:,}" for pkg, us in sorted(top_level.items(), key=lambda kv: -kv[1])[:10]))
    _common.footer([result], "cli_start")


if __name__ == "__main__":
    main()
