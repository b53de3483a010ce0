"""Call scripts as written by shift leads: one TOML file per script, parsed into steps.

Parsing never raises on a bad script: it returns what it could read and a Problem (file:line and a
plain message) for everything else, so one broken file never hides the others' problems. The
checker (checker.py) then looks at the script as a whole.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opconsole.errors import Problem

FIELD_TYPES = ("text", "choice", "number", "yesno", "phone")
MAX_OPTIONS = 9  # options are chosen with the number keys 1-9
STEP_KINDS = ("ask", "collect", "check", "article", "resolve", "escalate", "continue")
OUTCOME_KINDS = ("resolve", "escalate", "continue")
STEP_KEYS = {
    "ask": {"options"},
    "collect": {"prompt", "type", "choices", "pattern", "min", "max", "required", "next"},
    "check": {"results"},
    "article": {"next"},
    "resolve": set(),
    "escalate": set(),
    "continue": set(),
}
COMMON_STEP_KEYS = {"say", "hint"}
SCRIPT_KEYS = {"id", "title", "version", "language", "categories", "keywords", "start", "description", "steps"}
ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
YES, NO = "yes", "no"


@dataclass(frozen=True)
class Option:
    label: str
    next: str
    line: int


@dataclass(frozen=True)
class Step:
    id: str
    kind: str  # one of STEP_KINDS
    text: str  # the question, the prompt, the check, the article id, or the outcome's note
    line: int
    say: str = ""
    hint: str = ""
    options: tuple[Option, ...] = ()  # ask and check: the answers or results, each with its next step
    next: str | None = None  # collect and article
    next_line: int = 0
    field_type: str = "text"  # collect
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = True
    outcome: dict[str, Any] = field(default_factory=dict)  # resolve / escalate / continue

    @property
    def is_outcome(self) -> bool:
        return self.kind in OUTCOME_KINDS

    def successors(self) -> list[str]:
        if self.options:
            return [o.next for o in self.options]
        return [self.next] if self.next else []


@dataclass(frozen=True)
class Script:
    id: str
    title: str
    version: int
    language: str
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    start: str
    steps: dict[str, Step]
    path: str
    source: str
    description: str = ""
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]


class LineIndex:
    """Where things are in a TOML file: table headers, keys within a table, `next` references.

    tomllib gives values without positions; this scan of the text finds them for the messages. It
    understands the layout the format documents (a `[steps.ID]` table per step, inline tables for
    options and outcomes); anything it cannot place is reported at the step's header."""

    HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    KEY = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+)\s*=')
    REF = re.compile(r'\b(next|answer|result)\s*=\s*"((?:[^"\\]|\\.)*)"')

    def __init__(self, text: str):
        self.headers: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        self.refs: list[tuple[str, int, str, str]] = []  # (table, line, key, value)
        table = ""
        for number, line in enumerate(text.splitlines(), 1):
            header = self.HEADER.match(line)
            if header:
                table = ".".join(part.strip().strip('"') for part in header.group(1).split("."))
                self.headers.setdefault(table, number)
                continue
            key = self.KEY.match(line)
            if key:
                self.keys.setdefault((table, key.group(1).strip('"')), number)
            for ref in self.REF.finditer(line):
                self.refs.append((table, number, ref.group(1), ref.group(2)))

    def step(self, step_id: str) -> int:
        return self.headers.get(f"steps.{step_id}", 1)

    def key(self, table: str, key: str, default: int = 1) -> int:
        return self.keys.get((table, key), self.headers.get(table, default))

    def option_lines(self, step_id: str, key: str) -> list[int]:
        """Lines of the `answer = "..."` / `result = "..."` entries of a step, in order."""
        return [line for table, line, k, _v in self.refs if table == f"steps.{step_id}" and k == key]


def parse_script(path: Path | str, text: str) -> tuple[Script | None, list[Problem]]:
    """The script in `text`, or None if it cannot be read at all; and the problems found on the way."""
    name = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [syntax_problem(name, exc)]
    index = LineIndex(text)
    problems: list[Problem] = []

    def problem(line: int, message: str) -> None:
        problems.append(Problem(name, line, message))

    for key in raw:
        if key not in SCRIPT_KEYS:
            problem(index.key("", key), f"unknown key {key!r}; a script has {', '.join(sorted(SCRIPT_KEYS))}")
    script_id = raw.get("id")
    if not isinstance(script_id, str) or not ID.match(script_id):
        problem(index.key("", "id"), "the script needs an id: lowercase letters, digits, '-' and '_', "
                                     "e.g. id = \"printer-not-printing\"")
        script_id = Path(name).stem
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        problem(index.key("", "title"), "the script needs a title, e.g. title = \"Printer does not print\"")
        title = script_id
    version = raw.get("version")
    if type(version) is not int or version < 1:
        problem(index.key("", "version"), "version must be a whole number from 1 up; raise it on every change")
        version = 1
    language = raw.get("language", "en")
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2}", language):
        problem(index.key("", "language"), "language must be a two-letter code such as \"ru\" or \"en\"")
        language = "en"
    categories = string_list(raw, "categories", index, problem)
    keywords = string_list(raw, "keywords", index, problem)
    description = raw.get("description", "")
    if not isinstance(description, str):
        problem(index.key("", "description"), "description must be text")
        description = ""

    steps: dict[str, Step] = {}
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        problem(index.key("", "steps"), "the script has no steps; write each as a [steps.ID] table")
        raw_steps = {}
    for step_id, body in raw_steps.items():
        line = index.step(step_id)
        if not ID.match(step_id):
            problem(line, f"step id {step_id!r}: use lowercase letters, digits, '-' and '_'")
        if not isinstance(body, dict):
            problem(line, f"step {step_id!r} must be a table: [steps.{step_id}]")
            continue
        step = parse_step(step_id, body, line, index, problem)
        if step is not None:
            steps[step_id] = step

    start = raw.get("start", next(iter(raw_steps), ""))
    if not isinstance(start, str):
        problem(index.key("", "start"), "start must name a step")
        start = ""
    elif raw_steps and start not in raw_steps:
        problem(index.key("", "start"), f"start names step {start!r}, which the script does not have")
    script = Script(id=script_id, title=title.strip(), version=version, language=language,
                    categories=tuple(c.replace("/", ".") for c in categories), keywords=tuple(keywords), start=start, steps=steps, path=name,
                    source=text, description=description.strip(),
                    lines={key: index.key("", key) for key in raw})
    return script, problems


def syntax_problem(name: str, exc: tomllib.TOMLDecodeError) -> Problem:
    """tomllib says "... (at line N, column M)"; duplicate tables are the usual cause of a redeclaration."""
    message = str(exc)
    found = re.search(r"\(at line (\d+), column \d+\)", message)
    line = int(found.group(1)) if found else 1
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    dup = re.match(r"Cannot declare \('steps', '([^']+)'\) twice", message)
    if dup:
        return Problem(name, line, f"duplicate step id {dup.group(1)!r}: it is already defined above")
    return Problem(name, line, f"not valid TOML: {message}")


def string_list(raw: dict, key: str, index: LineIndex, problem) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problem(index.key("", key), f"{key} must be a list of texts, e.g. {key} = [\"...\", \"...\"]")
        return []
    return [v.strip() for v in value]


def parse_step(step_id: str, body: dict, line: int, index: LineIndex, problem) -> Step | None:
    table = f"steps.{step_id}"
    kinds = [k for k in STEP_KINDS if k in body]
    if len(kinds) != 1:
        what = "none" if not kinds else " and ".join(kinds)
        problem(line, f"step {step_id!r} must be exactly one of {', '.join(STEP_KINDS)} (it has {what})")
        return None
    kind = kinds[0]
    for key in body:
        if key != kind and key not in STEP_KEYS[kind] | COMMON_STEP_KEYS:
            allowed = ", ".join(sorted(STEP_KEYS[kind] | COMMON_STEP_KEYS))
            problem(index.key(table, key, line), f"step {step_id!r}: unknown key {key!r} for a {kind} step "
                                                 f"(it takes {allowed})")
    texts = {}
    for key in ("say", "hint"):
        value = body.get(key, "")
        if not isinstance(value, str):
            problem(index.key(table, key, line), f"step {step_id!r}: {key} must be text")
            value = ""
        texts[key] = value.strip()
    common = dict(id=step_id, kind=kind, line=line, **texts)

    if kind in ("ask", "check"):
        return Step(text=required_text(body, kind, table, line, index, problem),
                    options=parse_options(step_id, body, kind, line, index, problem), **common)
    if kind == "collect":
        return parse_collect(step_id, body, common, table, line, index, problem)
    if kind == "article":
        return Step(text=required_text(body, kind, table, line, index, problem),
                    **next_of(step_id, body, table, line, index, problem), **common)
    return parse_outcome(step_id, body, kind, common, table, line, index, problem)


def required_text(body: dict, key: str, table: str, line: int, index: LineIndex, problem) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        problem(index.key(table, key, line), f"{key} must be a non-empty text")
        return ""
    return value.strip()


def next_of(step_id: str, body: dict, table: str, line: int, index: LineIndex, problem) -> dict:
    value = body.get("next")
    if not isinstance(value, str) or not value:
        problem(index.key(table, "next", line), f"step {step_id!r} needs next = \"STEP\": where the script goes on")
        return {"next": None, "next_line": line}
    return {"next": value, "next_line": index.key(table, "next", line)}


def parse_options(step_id: str, body: dict, kind: str, line: int, index: LineIndex, problem) -> tuple[Option, ...]:
    key, label_key = ("options", "answer") if kind == "ask" else ("results", "result")
    raw = body.get(key)
    if not isinstance(raw, list) or not raw:
        problem(index.key(f"steps.{step_id}", key, line),
                f"step {step_id!r} needs {key} = [{{ {label_key} = \"...\", next = \"STEP\" }}, ...]")
        return ()
    if len(raw) > MAX_OPTIONS:
        problem(index.key(f"steps.{step_id}", key, line),
                f"step {step_id!r} has {len(raw)} {key}; at most {MAX_OPTIONS} fit the number keys")
    lines = index.option_lines(step_id, label_key)
    options = []
    seen: set[str] = set()
    for n, item in enumerate(raw):
        at = lines[n] if n < len(lines) else line
        if not isinstance(item, dict) or set(item) != {label_key, "next"} or not all(
                isinstance(v, str) and v.strip() for v in item.values()):
            problem(at, f"step {step_id!r}, {key} #{n + 1}: write {{ {label_key} = \"...\", next = \"STEP\" }}")
            continue
        label = item[label_key].strip()
        if label in seen:
            problem(at, f"step {step_id!r}: the {label_key} {label!r} is listed twice")
        seen.add(label)
        options.append(Option(label, item["next"].strip(), at))
    return tuple(options)


def parse_collect(step_id: str, body: dict, common: dict, table: str, line: int, index: LineIndex,
                  problem) -> Step:
    name = body.get("collect")
    if not isinstance(name, str) or not ID.match(name):
        problem(index.key(table, "collect", line), f"step {step_id!r}: collect names the ticket field to fill, "
                                                   "e.g. collect = \"asset_tag\" (lowercase, digits, '_')")
        name = ""
    field_type = body.get("type", "text")
    if field_type not in FIELD_TYPES:
        problem(index.key(table, "type", line), f"step {step_id!r}: field type {field_type!r} is not one of "
                                                f"{', '.join(FIELD_TYPES)}")
        field_type = "text"
    choices = body.get("choices", [])
    if field_type == "choice" and (not isinstance(choices, list) or not choices
                                   or not all(isinstance(c, str) and c.strip() for c in choices)):
        problem(index.key(table, "choices", line), f"step {step_id!r}: a choice field needs choices = [\"...\", ...]")
        choices = []
    elif field_type != "choice" and "choices" in body:
        problem(index.key(table, "choices", line), f"step {step_id!r}: choices apply to type = \"choice\" only")
        choices = []
    pattern = body.get("pattern")
    if pattern is not None:
        if field_type != "text" or not isinstance(pattern, str):
            problem(index.key(table, "pattern", line), f"step {step_id!r}: pattern applies to text fields only")
            pattern = None
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                problem(index.key(table, "pattern", line), f"step {step_id!r}: pattern is not a valid regular "
                                                           f"expression ({exc})")
                pattern = None
    bounds = {}
    for key in ("min", "max"):
        value = body.get(key)
        if value is None:
            continue
        if field_type != "number" or type(value) not in (int, float):
            problem(index.key(table, key, line), f"step {step_id!r}: {key} applies to number fields only and "
                                                 "must be a number")
            continue
        bounds[key] = float(value)
    if bounds.get("min") is not None and bounds.get("max") is not None and bounds["min"] > bounds["max"]:
        problem(index.key(table, "min", line), f"step {step_id!r}: min is greater than max")
    required = body.get("required", True)
    if type(required) is not bool:
        problem(index.key(table, "required", line), f"step {step_id!r}: required must be true or false")
        required = True
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        problem(index.key(table, "prompt", line), f"step {step_id!r}: prompt must be text")
        prompt = ""
    return Step(text=name, field_type=field_type, choices=tuple(c.strip() for c in choices), pattern=pattern,
                minimum=bounds.get("min"), maximum=bounds.get("max"), required=required,
                **next_of(step_id, body, table, line, index, problem),
                **{**common, "say": common["say"] or prompt.strip()})


OUTCOME_KEYS = {"resolve": {"code", "note"}, "escalate": {"group", "reason", "fields"}, "continue": set()}


def parse_outcome(step_id: str, body: dict, kind: str, common: dict, table: str, line: int, index: LineIndex,
                  problem) -> Step:
    value = body[kind]
    at = index.key(table, kind, line)
    if kind == "continue":
        if not isinstance(value, str) or not ID.match(value):
            problem(at, f"step {step_id!r}: continue names another script's id, e.g. continue = \"vpn-connection\"")
            value = ""
        return Step(text=value, outcome={"script": value}, **common)
    if not isinstance(value, dict):
        keys = " = \"...\", ".join(sorted(OUTCOME_KEYS[kind]))
        problem(at, f"step {step_id!r}: write {kind} = {{ {keys} = \"...\" }}")
        return Step(text="", outcome={}, **common)
    for key in value:
        if key not in OUTCOME_KEYS[kind]:
            problem(at, f"step {step_id!r}: unknown key {key!r} in {kind} (it takes "
                        f"{', '.join(sorted(OUTCOME_KEYS[kind]))})")
    outcome: dict[str, Any] = {}
    needed = ("code",) if kind == "resolve" else ("group", "reason")
    for key in needed:
        if not isinstance(value.get(key), str) or not value[key].strip():
            problem(at, f"step {step_id!r}: {kind} needs {key} = \"...\"")
    for key in OUTCOME_KEYS[kind] - {"fields"}:
        if isinstance(value.get(key), str):
            outcome[key] = value[key].strip()
    fields = value.get("fields", {})
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        problem(at, f"step {step_id!r}: fields maps a required field to a text or template, "
                    "e.g. fields = { error_text = \"{error}\" }")
        fields = {}
    outcome["fields"] = dict(fields)
    return Step(text=outcome.get("note", outcome.get("reason", "")), outcome=outcome, **common)


def template_names(template: str) -> list[str]:
    return [name.strip() for name in TEMPLATE_FIELD.findall(template)]


def fill(template: str, values: dict[str, str]) -> str:
    """A note template with {field} replaced by the collected value ("?" if it was not collected)."""
    return TEMPLATE_FIELD.sub(lambda m: values.get(m.group(1).strip(), "?"), template)
