"""The script checker: every problem a shift lead can make, with file:line and a plain message.

`check_script` looks at one parsed script against the configuration (categories, groups and what
they require, resolution codes) and, when they are known, the other scripts and the KB's articles.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from opconsole.errors import Problem
from opconsole.scripts.model import Script, Step, template_names

if TYPE_CHECKING:
    from opconsole.config import Config

# filled in from the caller's contact card by the escalation itself
FROM_CONTACT = {"site", "callback_phone"}
# what a template may use besides the collected fields
TICKET_PLACEHOLDERS = {"key", "subject", "caller", "phone", "site"}


def check_script(script: Script, config: Config, *, scripts: Collection[str] | None = None,
                 articles: Collection[str] | None = None) -> list[Problem]:
    """Problems of the whole script: references, reachability, outcomes, loops, what escalations need,
    and names the configuration (and, when given, the other scripts and the KB) must know."""
    problems: list[Problem] = []

    def problem(line: int, message: str) -> None:
        problems.append(Problem(script.path, line, message))

    for category in script.categories:
        if category not in config.categories:
            problem(script.lines.get("categories", 1),
                    f"unknown category {category!r}; `opconsole category list` shows them")
    steps = script.steps
    for step in steps.values():
        for target, line in references(step):
            if target not in steps:
                problem(line, f"step {step.id!r} goes to step {target!r}, which the script does not have")
        check_names(step, config, scripts, articles, problem)
    if script.start not in steps:
        return problems

    reachable = walk(script.start, lambda s: [t for t in steps[s].successors() if t in steps])
    for step in steps.values():
        if step.id not in reachable:
            problem(step.line, f"step {step.id!r} is unreachable: no step leads to it from {script.start!r}")
    check_exits(script, reachable, problem)
    check_templates(script, problem)
    check_escalations(script, config, problem)
    return sorted(problems, key=lambda p: p.line)


def references(step: Step) -> list[tuple[str, int]]:
    if step.options:
        return [(o.next, o.line) for o in step.options]
    return [(step.next, step.next_line)] if step.next else []


def check_names(step: Step, config: Config, scripts: Collection[str] | None, articles: Collection[str] | None,
                problem) -> None:
    outcome = step.outcome
    if step.kind == "resolve" and outcome.get("code") and outcome["code"] not in config.resolution_codes:
        problem(step.line, f"step {step.id!r}: unknown resolution code {outcome['code']!r}; the configured codes "
                           f"are {', '.join(config.resolution_codes)}")
    if step.kind == "escalate" and outcome.get("group"):
        group = config.groups.get(outcome["group"])
        if group is None:
            problem(step.line, f"step {step.id!r}: unknown group {outcome['group']!r}; "
                               "`opconsole group list` shows them")
        elif group.line == 1:
            problem(step.line, f"step {step.id!r}: {outcome['group']!r} is the first line itself; escalate to a "
                               "second- or third-line group")
    if step.kind == "continue" and scripts is not None and step.text and step.text not in scripts:
        problem(step.line, f"step {step.id!r} continues in script {step.text!r}, which is not in the library")
    if step.kind == "article" and articles is not None and step.text and step.text not in articles:
        problem(step.line, f"step {step.id!r} shows KB article {step.text!r}, which the knowledge base does not have")


def walk(start: str, successors) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for target in successors(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def check_exits(script: Script, reachable: set[str], problem) -> None:
    """Every reachable step must have a way to an outcome; a loop without one is named as a loop."""
    steps = script.steps
    predecessors: dict[str, list[str]] = {s: [] for s in steps}
    for step in steps.values():
        for target in step.successors():
            if target in steps:
                predecessors[target].append(step.id)
    outcomes = [s.id for s in steps.values() if s.is_outcome]
    finishing: set[str] = set()
    for outcome in outcomes:
        finishing |= walk(outcome, lambda s: predecessors[s])
    stuck = [s for s in steps if s in reachable and s not in finishing]
    reported: set[str] = set()
    for step_id in stuck:
        if step_id in reported:
            continue
        loop = cycle_through(step_id, steps, set(stuck))
        if loop:
            reported.update(loop)
            first = min(loop, key=lambda s: steps[s].line)
            order = loop[loop.index(first):] + loop[:loop.index(first)]
            problem(steps[first].line, "these steps loop with no way out to an outcome: "
                                       + " → ".join(order + [first]))
        else:
            reported.add(step_id)
            problem(steps[step_id].line, f"step {step_id!r} has no path to an outcome (resolve, escalate or "
                                         "continue)")


def cycle_through(start: str, steps: dict[str, Step], within: set[str]) -> list[str]:
    """A cycle through `start` that stays within `within`, as a list of steps, or [] if there is none."""
    path: list[str] = []

    def visit(node: str, seen: set[str]) -> bool:
        path.append(node)
        for target in steps[node].successors():
            if target == start:
                return True
            if target in within and target not in seen:
                seen.add(target)
                if visit(target, seen):
                    return True
        path.pop()
        return False

    return path if visit(start, {start}) else []


def collected_before(script: Script, *, every_path: bool = False) -> dict[str, set[str]]:
    """For each step, the fields collected on some path from the start to it (itself excluded), or
    with `every_path`, those collected whichever way the run came."""
    steps = script.steps
    everything = {s.text for s in steps.values() if s.kind == "collect"}
    before: dict[str, set[str]] = {s: (set(everything) if every_path else set()) for s in steps}
    before[script.start] = set()
    changed = True
    while changed:
        changed = False
        incoming: dict[str, list[set[str]]] = {s: [] for s in steps}
        for step in steps.values():
            # an optional field may be left empty, so it cannot be counted on when every path must give it
            gives = step.kind == "collect" and step.text and (step.required or not every_path)
            out = before[step.id] | ({step.text} if gives else set())
            for target in step.successors():
                if target in steps and target != script.start:
                    incoming[target].append(out)
        for step_id, sets in incoming.items():
            if not sets:
                continue
            new = set.intersection(*sets) if every_path else set.union(*sets)
            if new != before[step_id]:
                before[step_id] = new
                changed = True
    return before


def check_templates(script: Script, problem) -> None:
    before = collected_before(script)
    for step in script.steps.values():
        templates = [step.outcome.get("note", ""), step.outcome.get("reason", "")]
        templates += list(step.outcome.get("fields", {}).values())
        known = before[step.id] | TICKET_PLACEHOLDERS
        for name in sorted({n for t in templates for n in template_names(t)}):
            if name not in known:
                problem(step.line, f"step {step.id!r} uses {{{name}}}, which no step before it collects")


def check_escalations(script: Script, config: Config, problem) -> None:
    before = collected_before(script, every_path=True)
    for step in script.steps.values():
        group = step.outcome.get("group") if step.kind == "escalate" else None
        if group not in config.groups:
            continue
        given = before[step.id] | set(step.outcome.get("fields", {})) | FROM_CONTACT
        for category in script.categories or (None,):
            missing = [f for f in config.required_fields(group, category) if f not in given]
            if missing:
                what = ", ".join(f"{f} ({config.field_label(f)})" for f in missing)
                scope = f" for category {category}" if category else ""
                problem(step.line, f"step {step.id!r} escalates to {group}, which needs {what}{scope}; not every "
                                   "way to this step collects it")
