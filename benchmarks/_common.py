"""Shared helpers for the on-demand benchmarks: paths, statistics, reporting, machine context.

Not a test module: the benchmarks print figures and always exit 0; a missed target is printed as
MISSED, never raised.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
DATA = BENCH_DIR / ".data"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def data_dir() -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    return DATA


def empty_config() -> Path:
    """An empty user config file: load_config(it) gives exactly the bundled defaults, whatever the
    developer has in ~/.config/opconsole."""
    path = data_dir() / "empty-config.toml"
    if not path.exists():
        path.write_text("# intentionally empty: the benchmarks run on the bundled defaults\n", "utf-8")
    return path


def bench_config():
    from opconsole.config import load_config

    return load_config(empty_config())


def remove_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", "-checkpoint.lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- statistics ---------------------------------------------------------------------------------

def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolation percentile (same as numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values),
        "p5": percentile(values, 5),
        "p25": percentile(values, 25),
        "median": statistics.median(values),
        "p75": percentile(values, 75),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "tickets/s":
        return f"{value:,.0f} tickets/s"
    return f"{value:.3f} {unit}"


def report_latency(label: str, values: list[float], unit: str, *, target: float | None = None,
                   target_stat: str = "p95", lower_is_better: bool = True) -> dict[str, Any]:
    """Print one latency line set: median, p95, spread, N, and the target verdict."""
    s = summary(values)
    print(f"  {label}")
    print(f"    N={s['n']}  median={fmt(s['median'], unit)}  p95={fmt(s['p95'], unit)}  "
          f"p99={fmt(s['p99'], unit)}  max={fmt(s['max'], unit)}")
    print(f"    spread: min={fmt(s['min'], unit)}  p25={fmt(s['p25'], unit)}  p75={fmt(s['p75'], unit)}  "
          f"IQR={fmt(s['p75'] - s['p25'], unit)}  stdev={fmt(s['stdev'], unit)}  "
          f"(p95/median {s['p95'] / s['median']:.2f}x)")
    result: dict[str, Any] = {"label": label, **s}
    if target is not None:
        result.update(verdict(label, s[target_stat], target, unit, target_stat, lower_is_better))
    return result


def verdict(label: str, value: float, target: float, unit: str, stat: str,
            lower_is_better: bool = True) -> dict[str, Any]:
    ratio = value / target
    ok = value <= target if lower_is_better else value >= target
    sign = "<=" if lower_is_better else ">="
    mark = "met" if ok else "MISSED"
    print(f"    target: {stat} {sign} {fmt(target, unit)}; got {fmt(value, unit)} "
          f"= {ratio:.2f}x target -> {mark}")
    return {"target": target, "target_stat": stat, "ratio": ratio, "met": ok}


# --- context ------------------------------------------------------------------------------------

def loadavg() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "n/a"


def schema_fingerprint() -> str:
    """A hash of the migration scripts: cached stores are rebuilt when the schema text changes
    (migration 1 has been edited in place, so the schema version alone does not tell)."""
    import hashlib

    from opconsole.migrations import MIGRATIONS

    return hashlib.sha256("\n".join(MIGRATIONS).encode()).hexdigest()[:12]


def source_state() -> str:
    """The commit and a hash of the package sources the figures were measured on."""
    import hashlib
    import subprocess

    digest = hashlib.sha256()
    for path in sorted((ROOT / "opconsole").rglob("*.py")):
        digest.update(path.read_bytes())
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "opconsole"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        head, dirty = "?", []
    state = f"HEAD {head}" + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else " (clean)")
    return f"{state}; opconsole sources sha256 {digest.hexdigest()[:12]}, schema {schema_fingerprint()}"


def header(title: str) -> None:
    print("=" * 100)
    print(title)
    print(f"  python {platform.python_version()}  sqlite {sqlite3.sqlite_version}  "
          f"cpus {os.cpu_count()}  loadavg(1/5/15m) {loadavg()}  {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print(f"  source: {source_state()}")
    print("=" * 100)


def footer(results: Iterable[dict[str, Any]], name: str) -> None:
    results = list(results)
    print("-" * 100)
    print(f"loadavg at end: {loadavg()}")
    missed = [r["label"] for r in results if r.get("met") is False]
    if missed:
        print(f"RESULT: MISSED {len(missed)} target(s): " + "; ".join(missed))
    else:
        print("RESULT: all targets met")
    out = data_dir() / f"last-{name}.json"
    out.write_text(json.dumps(results, indent=2, default=str), "utf-8")
    print(f"(figures also written to {out.relative_to(ROOT)})")


class Progress:
    """Prints a progress line at most every `every` seconds (for the long data builds)."""

    def __init__(self, label: str, total: int, every: float = 5.0):
        self.label, self.total, self.every = label, total, every
        self.start = self.last = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every or done >= self.total:
            self.last = now
            elapsed = now - self.start
            rate = done / elapsed if elapsed else 0
            print(f"    {self.label}: {done:,}/{self.total:,} ({100 * done / self.total:.0f}%) "
                  f"{elapsed:.0f}s elapsed, {rate:,.0f}/s", flush=True)


def flush() -> None:
    sys.stdout.flush()


# --- statement timing (diagnostics only) --------------------------------------------------------

class TimedConnection:
    """Wraps an sqlite3.Connection and adds up the time spent in execute() per kind of statement.

    Installed on a Store instance (store.conn and store.db.conn) for a diagnostic run; it changes no
    product code. The time of a SELECT covers only its first step; the caller fetches the rest.
    """

    def __init__(self, conn, classify):
        self._conn = conn
        self._classify = classify
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def execute(self, sql, params=()):
        start = time.perf_counter()
        try:
            return self._conn.execute(sql, params)
        finally:
            kind = self._classify(sql)
            self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - start
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def table(self, total: float, indent: str = "    ") -> None:
        sql_total = sum(self.seconds.values())
        for kind, secs in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            n = self.counts[kind]
            print(f"{indent}{kind:<44} {n:>9,} calls  {secs:8.3f} s  {1e6 * secs / n:8.1f} us/call  "
                  f"{100 * secs / total:5.1f}% of wall")
        print(f"{indent}{'(all SQL execute calls)':<44} {sum(self.counts.values()):>9,} calls  {sql_total:8.3f} s  "
              f"{'':>17}  {100 * sql_total / total:5.1f}% of wall")
        print(f"{indent}{'(Python outside execute)':<44} {'':>15}  {total - sql_total:8.3f} s  "
              f"{'':>17}  {100 * (total - sql_total) / total:5.1f}% of wall")


def install_timer(store, classify) -> TimedConnection:
    timed = TimedConnection(store.conn, classify)
    store.conn = timed
    store.db.conn = timed
    return timed


def uninstall_timer(store, timed: TimedConnection) -> None:
    store.conn = timed._conn
    store.db.conn = timed._conn


def classify_sql(sql: str) -> str:
    head = " ".join(sql.split()[:3])
    if head.startswith("SAVEPOINT"):
        return "SAVEPOINT sqlite_utils_<random hex>"
    if head.startswith("RELEASE"):
        return "RELEASE SAVEPOINT sqlite_utils_<random hex>"
    if head.startswith("SELECT id FROM tickets"):
        return "SELECT id FROM tickets WHERE key=? (clash)"
    if head.startswith("INSERT INTO") or head.startswith("SELECT"):
        words = sql.split()
        table = words[2] if head.startswith("INSERT") else words[words.index("FROM") + 1] if "FROM" in words else "?"
        return f"{words[0]} {table}"
    return head[:44]


def histogram(values: list[float], edges: list[float], unit: str = "ms", indent: str = "    ") -> None:
    """Counts per bucket [edge_i, edge_i+1), to show where a tail comes from (e.g. quantised fsyncs)."""
    bounds = [float("-inf")] + edges + [float("inf")]
    parts = []
    for low, high in zip(bounds, bounds[1:]):
        n = sum(1 for v in values if low <= v < high)
        if low == float("-inf"):
            label = f"<{high:g}"
        elif high == float("inf"):
            label = f">={low:g}"
        else:
            label = f"{low:g}-{high:g}"
        parts.append(f"{label}: {n}")
    print(f"{indent}histogram ({unit}): " + "  ".join(parts))
