"""A script run as a state machine: the current step, the path taken and every answer.

The state is a pure function of the script and the answers given (`replay`), so going back is
replaying one answer fewer, resuming after a restart is replaying what was stored, and a run can
never drift from what its transcript says.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from opconsole.errors import InvalidInput
from opconsole.scripts.model import NO, YES, Script, Step, fill

YES_WORDS = {"y", "yes", "д", "да", "1", "true"}
NO_WORDS = {"n", "no", "н", "нет", "0", "false"}
MAX_TEXT = 2000


@dataclass(frozen=True)
class Answer:
    step: str
    value: str  # the chosen option's label, the collected value, or "" for an article read


@dataclass(frozen=True)
class RunState:
    script: Script
    answers: tuple[Answer, ...] = ()
    carried: dict[str, str] = field(default_factory=dict)  # values brought from the script that continued here
    path: tuple[str, ...] = ()
    collected: dict[str, str] = field(default_factory=dict)
    phone_region: str = "RU"  # phones without +country code are read in this region (the site's config)

    @property
    def step(self) -> Step:
        return self.script.steps[self.path[-1]]

    @property
    def finished(self) -> bool:
        return self.step.is_outcome

    def values(self, ticket: dict[str, str] | None = None) -> dict[str, str]:
        """What templates can use: the ticket's placeholders, then what this run collected."""
        return {**(ticket or {}), **self.carried, **self.collected}

    def outcome(self, ticket: dict[str, str] | None = None) -> dict:
        """The finished run's outcome with its templates filled: kind, and code/note, group/reason/fields,
        or the script to continue in."""
        step = self.step
        if not step.is_outcome:
            raise InvalidInput(f"the script has not reached an outcome yet (it is at step {step.id!r})")
        values = self.values(ticket)
        out = {"kind": step.kind, "step": step.id}
        if step.kind == "resolve":
            out.update(code=step.outcome["code"], note=fill(step.outcome.get("note", ""), values))
        elif step.kind == "escalate":
            fields = {name: value for name, value in self.collected.items() if value}
            fields.update({name: fill(t, values) for name, t in step.outcome.get("fields", {}).items()})
            out.update(group=step.outcome["group"], reason=fill(step.outcome.get("reason", ""), values),
                       fields=fields)
        else:
            out.update(script=step.outcome["script"])
        return out

    def transcript(self) -> list[tuple[str, str]]:
        """(what the step asked or said, the answer) for every answered step, in order."""
        lines = []
        for answer in self.answers:
            step = self.script.steps[answer.step]
            asked = {"collect": step.say or step.text, "article": f"KB article {step.text}"}.get(step.kind, step.text)
            lines.append((asked, answer.value))
        return lines


def start(script: Script, carried: dict[str, str] | None = None, phone_region: str = "RU") -> RunState:
    return RunState(script, (), dict(carried or {}), (script.start,), {}, phone_region)


def replay(script: Script, answers: list[Answer] | tuple[Answer, ...], carried: dict[str, str] | None = None,
           phone_region: str = "RU") -> RunState:
    state = start(script, carried, phone_region)
    for given in answers:
        if given.step != state.step.id:
            raise InvalidInput(f"the stored run does not fit script {script.id} v{script.version}: "
                               f"it answered step {given.step!r} where the script is at {state.step.id!r}")
        state = answer(state, given.value)
    return state


def back(state: RunState) -> RunState:
    """The state before the last answer: exactly what it was then."""
    if not state.answers:
        return state
    return replay(state.script, state.answers[:-1], state.carried, state.phone_region)


def choose(state: RunState, number: int) -> RunState:
    """Pick option `number` (1-based) of a question or check."""
    options = state.step.options
    if not 1 <= number <= len(options):
        raise InvalidInput(f"choose 1 to {len(options)}")
    return answer(state, options[number - 1].label)


def answer(state: RunState, value: str) -> RunState:
    """Answer the current step: an option's label for a question or check, the value for a field,
    anything (usually "") to go on from an article."""
    step = state.step
    if step.is_outcome:
        raise InvalidInput("the script is finished; go back to change an answer")
    collected = state.collected
    if step.options:
        found = next((o for o in step.options if o.label == value), None)
        if found is None:
            raise InvalidInput(f"{value!r} is not one of the answers: {', '.join(o.label for o in step.options)}")
        target, value = found.next, found.label
    elif step.kind == "collect":
        value = field_value(step, value, state.phone_region)
        collected = {**collected, step.text: value}
        target = step.next
    else:
        value, target = "", step.next
    return RunState(state.script, state.answers + (Answer(step.id, value),), state.carried,
                    state.path + (target,), collected, state.phone_region)


def field_value(step: Step, raw: str, phone_region: str) -> str:
    """The value as the ticket stores it, or InvalidInput saying what is expected."""
    text = raw.strip()
    if not text:
        if step.required:
            raise InvalidInput(f"{step.text} is required")
        return ""
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{step.text} is {len(text)} characters long; at most {MAX_TEXT} are allowed")
    kind = step.field_type
    if kind == "text":
        if step.pattern and not re.fullmatch(step.pattern, text):
            raise InvalidInput(f"{text!r} does not look like a valid {step.text} (expected {step.pattern})")
        return text
    if kind == "choice":
        if text.isdecimal() and 1 <= int(text) <= len(step.choices):
            return step.choices[int(text) - 1]
        match = next((c for c in step.choices if c.casefold() == text.casefold()), None)
        if match is None:
            raise InvalidInput(f"{text!r} is not one of: {', '.join(step.choices)}")
        return match
    if kind == "number":
        try:
            number = float(text.replace(",", ".").replace(" ", ""))
        except ValueError:
            raise InvalidInput(f"{text!r} is not a number") from None
        if "_" in text or not math.isfinite(number):
            raise InvalidInput(f"{text!r} is not a number")
        if step.minimum is not None and number < step.minimum or step.maximum is not None and number > step.maximum:
            raise InvalidInput(f"{step.text} must be between {plain(step.minimum)} and {plain(step.maximum)}")
        return plain(number)
    if kind == "yesno":
        word = text.casefold()
        if word in YES_WORDS:
            return YES
        if word in NO_WORDS:
            return NO
        raise InvalidInput(f"{text!r}: answer yes or no")
    from opconsole.domain import normalise_phone  # phone

    return normalise_phone(text, phone_region)


def plain(number: float | None) -> str:
    if number is None:
        return "…"
    return str(int(number)) if float(number).is_integer() else str(number)
