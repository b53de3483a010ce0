"""Configuration: the bundled defaults, overridden key by key by the user's TOML file.

The file is found by `--config FILE`, else `OPCONSOLE_CONFIG`, else `config.toml` in the user
config directory (only if it exists). Tables merge recursively; any other value replaces the default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opconsole.errors import ConfigError
from opconsole.sla import AlwaysOpen, BusinessHours, Calendar

DEFAULTS = Path(__file__).with_name("defaults.toml")  # shipped as package data
LEVELS = ("low", "medium", "high")
PRIORITIES = ("P1", "P2", "P3", "P4")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Category:
    id: str  # "vpn" or "vpn.no_connect"
    name: str
    group: str | None  # the group this kind of request is usually escalated to

    @property
    def parent(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def is_sub(self) -> bool:
        return "." in self.id


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    line: int
    requires: dict[str, tuple[str, ...]]  # category id, or "*" for every category -> field names


@dataclass(frozen=True)
class SlaTarget:
    priority: str
    response_minutes: int
    resolution_minutes: int
    calendar: Calendar


@dataclass(frozen=True)
class Targets:
    """KPI targets ([kpi]); shares as 0..1. None: no target, the KPI is shown uncoloured."""
    sla_response: float | None = 0.80
    sla_resolution: float | None = 0.80
    average_delay_seconds: float | None = 60.0
    taken_within: float | None = 0.99
    taken_within_seconds: int = 60
    fcr: float | None = 0.90
    flr: float | None = None
    escalation_rate: float | None = None  # at most
    reopen_rate: float | None = None  # at most
    aht_seconds: float | None = None  # at most
    football_moves: int = 2


@dataclass(frozen=True)
class Config:
    site_prefix: str
    phone_region: str
    first_contact_minutes: int
    recent_days: int
    default_impact: str
    default_urgency: str
    categories: dict[str, Category]
    groups: dict[str, Group]
    first_line: str
    matrix: dict[tuple[str, str], str]
    sla: dict[str, SlaTarget]
    resolution_codes: dict[str, str]
    fields: dict[str, str]
    keymap: dict[str, str]  # binding id -> keys, e.g. "ticket.take" = "t,f5"
    sources: tuple[str, ...]
    script_dirs: tuple[Path, ...] = ()  # the site's own call scripts, besides the bundled ones
    kb_stale_days: int = 365  # an article not updated for longer is reported as stale
    targets: Targets = Targets()
    shift_starts: tuple[time, ...] = (time(8), time(20))  # in the site's time zone

    def priority(self, impact: str, urgency: str) -> str:
        return self.matrix[(impact, urgency)]

    def required_fields(self, group: str, category: str | None) -> list[str]:
        """Fields `group` needs before it accepts an escalation of a ticket in `category`."""
        keys = ["*"]
        if category:
            keys += [category.split(".", 1)[0], category]
        required: list[str] = []
        for key in dict.fromkeys(keys):
            for name in self.groups[group].requires.get(key, ()):
                if name not in required:
                    required.append(name)
        return required

    def field_label(self, name: str) -> str:
        return self.fields.get(name, name.replace("_", " "))


def default_config_path() -> Path | None:
    """The user's config file, if one is set or exists; no directory is created."""
    explicit = os.environ.get("OPCONSOLE_CONFIG")
    if explicit:
        return Path(explicit)
    from platformdirs import user_config_path

    candidate = user_config_path("opconsole", appauthor=False) / "config.toml"
    return candidate if candidate.exists() else None


def load_config(path: Path | None = None) -> Config:
    raw = tomllib.loads(DEFAULTS.read_text("utf-8"))
    sources = ["(bundled defaults)"]
    path = path or default_config_path()
    if path is not None:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        try:
            override = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        relative_to_file(override, Path(path).parent)
        raw = merge(raw, override)
        sources.append(str(path))
    try:
        return build(raw, tuple(sources))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{sources[-1]}: invalid configuration: {exc}") from None


def relative_to_file(raw: dict[str, Any], base: Path) -> None:
    """Directories a config file names are read relative to that file."""
    dirs = raw.get("scripts", {}).get("dirs")
    if isinstance(dirs, list):
        raw["scripts"]["dirs"] = [str(base / Path(str(d)).expanduser()) for d in dirs]


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build(raw: dict[str, Any], sources: tuple[str, ...]) -> Config:
    where = sources[-1]
    site = raw["site"]
    calendars = {name: build_calendar(name, spec) for name, spec in raw["calendars"].items()}
    groups = {
        gid: Group(
            id=gid,
            name=spec["name"],
            line=int(spec.get("line", 2)),
            requires={cat: tuple(names) for cat, names in spec.get("requires", {}).items()},
        )
        for gid, spec in raw["groups"].items()
    }
    first_line = [g.id for g in groups.values() if g.line == 1]
    if len(first_line) != 1:
        raise ConfigError(f"{where}: exactly one group must have line = 1, found {len(first_line)}")
    categories: dict[str, Category] = {}
    for cid, spec in raw["categories"].items():
        group = spec.get("group")
        categories[cid] = Category(cid, spec["name"], group)
        for sid, name in spec.get("sub", {}).items():
            categories[f"{cid}.{sid}"] = Category(f"{cid}.{sid}", name, group)
    for category in categories.values():
        if category.group is not None and category.group not in groups:
            raise ConfigError(f"{where}: category {category.id}: unknown group {category.group!r}")
    for group in groups.values():
        for cat in group.requires:
            if cat != "*" and cat not in categories:
                raise ConfigError(f"{where}: groups.{group.id}.requires: unknown category {cat!r}")
    matrix = {}
    for impact in LEVELS:
        for urgency in LEVELS:
            priority = raw["priority"]["matrix"][impact][urgency]
            if priority not in PRIORITIES:
                raise ConfigError(f"{where}: priority.matrix.{impact}.{urgency}: {priority!r} is not one of {', '.join(PRIORITIES)}")
            matrix[(impact, urgency)] = priority
    sla = {}
    for priority in PRIORITIES:
        spec = raw["sla"][priority]
        if spec["calendar"] not in calendars:
            raise ConfigError(f"{where}: sla.{priority}.calendar: unknown calendar {spec['calendar']!r}")
        sla[priority] = SlaTarget(priority, int(spec["response_minutes"]), int(spec["resolution_minutes"]), calendars[spec["calendar"]])
    defaults = raw["priority"]
    for name in ("default_impact", "default_urgency"):
        if defaults[name] not in LEVELS:
            raise ConfigError(f"{where}: priority.{name}: {defaults[name]!r} is not one of {', '.join(LEVELS)}")
    return Config(
        site_prefix=str(site["prefix"]),
        phone_region=str(site["phone_region"]).upper(),
        first_contact_minutes=int(site["first_contact_minutes"]),
        recent_days=int(site["recent_days"]),
        default_impact=defaults["default_impact"],
        default_urgency=defaults["default_urgency"],
        categories=categories,
        groups=groups,
        first_line=first_line[0],
        matrix=matrix,
        sla=sla,
        resolution_codes=dict(raw["resolution_codes"]),
        fields=dict(raw.get("fields", {})),
        keymap={str(k): str(v) for k, v in raw.get("keys", {}).items()},
        sources=sources,
        script_dirs=tuple(Path(d) for d in raw.get("scripts", {}).get("dirs", [])),
        kb_stale_days=int(raw.get("kb", {}).get("stale_days", 365)),
        targets=build_targets(raw.get("kpi", {}), where),
        shift_starts=build_shift_starts(raw.get("lead", {}).get("shift_starts", ["08:00", "20:00"]), where),
    )


TARGET_KEYS = {  # [kpi] key -> (Targets field, scale to its unit)
    "sla_response_percent": ("sla_response", 0.01), "sla_resolution_percent": ("sla_resolution", 0.01),
    "average_delay_seconds": ("average_delay_seconds", 1), "taken_within_percent": ("taken_within", 0.01),
    "fcr_percent": ("fcr", 0.01), "flr_percent": ("flr", 0.01), "escalation_rate_percent": ("escalation_rate", 0.01),
    "reopen_rate_percent": ("reopen_rate", 0.01), "aht_minutes": ("aht_seconds", 60),
}


def build_targets(spec: dict[str, Any], where: str) -> Targets:
    values: dict[str, Any] = {}
    for key, raw in spec.items():
        if key in ("taken_within_seconds", "football_moves"):
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                raise ConfigError(f"{where}: kpi.{key}: {raw!r} is not a whole number of 0 or more")
            values[key] = raw
            continue
        if key not in TARGET_KEYS:
            raise ConfigError(f"{where}: kpi.{key}: unknown KPI target; known: {', '.join(sorted(TARGET_KEYS))}, "
                              "taken_within_seconds, football_moves")
        if not isinstance(raw, (int, float)) or isinstance(raw, bool) or raw < 0 or (
                key.endswith("_percent") and raw > 100):
            raise ConfigError(f"{where}: kpi.{key}: {raw!r} is not a number"
                              + (" from 0 to 100" if key.endswith("_percent") else " of 0 or more"))
        name, scale = TARGET_KEYS[key]
        values[name] = raw * scale
    return Targets(**values)


def build_shift_starts(spec: Any, where: str) -> tuple[time, ...]:
    if not isinstance(spec, list) or not spec:
        raise ConfigError(f"{where}: lead.shift_starts: give a list of times of day, e.g. [\"08:00\", \"20:00\"]")
    try:
        return tuple(sorted(time.fromisoformat(str(start)) for start in spec))
    except ValueError:
        raise ConfigError(f"{where}: lead.shift_starts: {spec!r} holds something that is not a time like \"08:00\"") from None


def build_calendar(name: str, spec: dict[str, Any]) -> Calendar:
    if spec.get("always_open"):
        return AlwaysOpen(name)
    try:
        zone = ZoneInfo(spec["timezone"])
    except ZoneInfoNotFoundError:
        raise ConfigError(f"calendar {name}: unknown time zone {spec['timezone']!r}") from None
    unknown = [d for d in spec["weekdays"] if d not in WEEKDAYS]
    if unknown:
        raise ConfigError(f"calendar {name}: unknown weekdays {unknown}; use {', '.join(WEEKDAYS)}")
    return BusinessHours(
        name=name,
        timezone=zone,
        opens=time.fromisoformat(spec["opens"]),
        closes=time.fromisoformat(spec["closes"]),
        weekdays=frozenset(WEEKDAYS.index(d) for d in spec["weekdays"]),
        holidays=frozenset(date.fromisoformat(str(d)) for d in spec.get("holidays", [])),
    )
