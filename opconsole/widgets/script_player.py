"""The call-script player: the middle pane. The current step large and clear, answers on the number
keys, enter to confirm, backspace to go back, the path as a breadcrumb and the collected values below.

The engine is pure and fast, so each answer shows at once; the run's progress is saved in a worker
after every answer (an older save that arrives late is skipped), and a run that reaches its outcome
is recorded on the ticket before the workbench opens the resolve or escalate form.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

from rich.markup import escape
from textual import on, work
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from opconsole.errors import OpconsoleError

if TYPE_CHECKING:
    from opconsole.scripts.engine import RunState
    from opconsole.scripts.runs import Run, ScriptRuns, TicketScripts

BREADCRUMB_STEPS = 6  # the last steps of the path shown in the breadcrumb


class FieldInput(Input):
    """The value a collect step asks for; backspace in an empty field goes back one answer."""

    class BackRequested(Message):
        pass

    def action_delete_left(self) -> None:
        if self.value:
            super().action_delete_left()
        else:
            self.post_message(self.BackRequested())


class ScriptPlayer(VerticalScroll, can_focus=True):
    BINDINGS = [
        *[Binding(str(n), f"choose({n})", f"Answer {n}", show=False, id=f"script.answer_{n}") for n in range(1, 10)],
        Binding("enter", "confirm", "Confirm", id="script.confirm"),
        Binding("backspace", "back", "Back", id="script.back"),
        Binding("ctrl+r", "restart", "Restart script", id="script.restart"),
        Binding("escape", "leave", "Queue", show=False, id="script.leave"),
    ]
    DEFAULT_CSS = """
    ScriptPlayer { padding: 0 1; }
    ScriptPlayer #script-head { color: $text-muted; }
    ScriptPlayer #script-say { text-style: bold; margin-top: 1; }
    ScriptPlayer #script-body { margin-top: 1; }
    ScriptPlayer #script-input { margin-top: 1; display: none; }
    ScriptPlayer.collecting #script-input { display: block; }
    ScriptPlayer #script-error { color: $error; }
    ScriptPlayer #script-hint { color: $text-muted; margin-top: 1; }
    ScriptPlayer #script-collected { color: $text-muted; margin-top: 1; }
    """

    class Outcome(Message):
        """A run reached its outcome and is recorded on the ticket: open the resolve or escalate form."""

        def __init__(self, key: str, outcome: dict):
            super().__init__()
            self.key, self.outcome = key, outcome

    class ArticleShown(Message):
        """A step asks for a knowledge-base article in the KB pane."""

        def __init__(self, article: str):
            super().__init__()
            self.article = article

    def __init__(self, runs: Callable[[], ScriptRuns], *, id: str | None = None):
        super().__init__(id=id)
        self.runs = runs  # this worker thread's ScriptRuns
        self.shown: TicketScripts | None = None
        self.state: RunState | None = None
        self.save_lock = threading.Lock()
        self.saves_sent = self.saves_done = 0
        self.start_when_loaded: str | None = None  # `s` came before this ticket's scripts were loaded
        self.parts_mounted = False  # the parts are mounted after the first frame
        self.wanted: str | None = None  # the ticket the player follows
        self.generation = 0  # runs started here: what was read before the last one is stale
        self.starting = False  # a run is being started (its ticket taken) and is not shown yet

    @property
    def built(self) -> bool:
        """The parts are there: mounted after the first frame, and not yet removed as the console closes
        (a worker's late answer may come then)."""
        return self.parts_mounted and bool(self.children)

    def on_mount(self) -> None:
        self.call_after_refresh(self.build)  # after the console's first frame: ~10 ms it need not wait for

    async def build(self) -> None:
        if not self.is_attached:  # the console is closing (an unknown operator, say)
            return
        parts = [Static(id=f"script-{name}") for name in ("head", "say", "body")]
        parts += [FieldInput(id="script-input")]
        parts += [Static(id=f"script-{name}") for name in ("error", "collected", "hint")]
        await self.mount(Vertical(*parts))
        if not self.query("#script-head"):
            return  # the console closed meanwhile: nothing was mounted
        self.parts_mounted = True
        if self.shown is not None:
            self.render_state()

    @property
    def running(self) -> bool:
        """A run is under way here (started, not at its outcome), or is being started."""
        return self.starting or self.state is not None and not self.state.finished

    def on_focus(self) -> None:
        if self.built and self.has_class("collecting"):  # a value is asked for: typing goes straight into it
            self.query_one("#script-input", FieldInput).focus()

    # --- loading --------------------------------------------------------------------------------

    def show_ticket(self, key: str | None) -> None:
        if key != self.start_when_loaded:
            self.start_when_loaded = None  # `s` was for another ticket
        if key != self.wanted:
            self.starting = False  # the operator moved on: the run being started is not shown here
        self.wanted = key
        if key is None:
            self.display_nothing("No ticket selected.")
            return
        if self.shown is None or self.shown.key != key:
            self.load(key, self.generation)

    @work(thread=True, exclusive=True, group="script-load")
    def load(self, key: str, generation: int) -> None:
        try:
            found = self.runs().for_ticket(key)
        except OpconsoleError as exc:
            self.app.call_from_thread(self.display_nothing, str(exc))
            return
        self.app.call_from_thread(self.display_ticket, found, generation)

    def display_ticket(self, found: TicketScripts, generation: int) -> None:
        if found.key != self.wanted or generation < self.generation:
            return  # the cursor moved on, or a run started since this was read
        self.starting = False
        self.shown = found
        self.state = found.run.state if found.run else None
        self.part("error", "")
        self.render_state()
        if self.start_when_loaded == found.key:
            self.start_when_loaded = None
            if not self.start_best():
                self.part("error", "No call script matches this ticket.")

    def display_nothing(self, text: str) -> None:
        self.shown, self.state, self.start_when_loaded = None, None, None
        self.set_class(False, "collecting")
        for part, content in (("head", ""), ("say", ""), ("body", text), ("collected", ""), ("hint", "")):
            self.part(part, content)

    # --- showing ----------------------------------------------------------------------------------

    def render_state(self) -> None:
        shown, state = self.shown, self.state
        if shown is None or not self.built:
            return
        if state is None:
            self.render_suggestions(shown)
            return
        step = state.step
        script = state.script
        trail = [script.steps[s].id for s in state.path[-BREADCRUMB_STEPS:]]
        more = "… › " if len(state.path) > BREADCRUMB_STEPS else ""
        self.part("head", f"{shown.key} · {escape(script.title)} v{script.version}\n{more}{' › '.join(trail)}")
        self.part("say", escape(step.say or (step.text if step.kind in ("ask", "check") else "")))
        self.part("body", self.step_body(step, state))
        collecting = step.kind == "collect"
        self.set_class(collecting, "collecting")
        field_input = self.query_one("#script-input", FieldInput)
        if collecting:
            field_input.placeholder = f"{step.text} ({step.field_type})"
            if self.has_focus:
                field_input.focus()
        elif field_input.has_focus:
            self.focus()  # the field is hidden now: the keys go to the player again
        collected = state.values()
        self.part("collected", "Collected: " + "; ".join(f"{escape(k)} = {escape(v)}" for k, v in collected.items())
                  if collected else "")
        self.part("hint", escape(hint_for(step)))

    def step_body(self, step, state) -> str:
        if step.options:
            lines = [f"[b]{n}[/b]  {escape(o.label)}" for n, o in enumerate(step.options, 1)]
            if step.say and step.kind in ("ask", "check"):
                lines.insert(0, escape(step.text) + "\n")
            return "\n".join(lines) + (f"\n\n[i]{escape(step.hint)}[/i]" if step.hint else "")
        hint = f"\n\n[i]{escape(step.hint)}[/i]" if step.hint else ""
        if step.kind == "collect":
            label = self.app.config.field_label(step.text)  # type: ignore[attr-defined]
            return f"Fill in [b]{escape(label)}[/b]" + (f": one of {escape(', '.join(step.choices))}"
                                                        if step.choices else "") + hint
        if step.kind == "article":
            return f"Show the caller KB article [b]{escape(step.text)}[/b] (pane 3)." + hint
        outcome = state.outcome(self.shown.values if self.shown else None)
        if step.kind == "resolve":
            return f"[b]Outcome: resolve[/b] ({escape(outcome['code'])})\n{escape(outcome['note'])}" + hint
        if step.kind == "escalate":
            return (f"[b]Outcome: escalate to {escape(outcome['group'])}[/b]\n{escape(outcome['reason'])}"
                    + hint)
        return f"[b]Outcome: continue in script {escape(outcome['script'])}[/b]" + hint

    def render_suggestions(self, shown: TicketScripts) -> None:
        self.set_class(False, "collecting")
        self.part("head", f"{shown.key} · no script running")
        if shown.suggestions:
            self.part("say", "Suggested call scripts:")
            self.part("body", "\n".join(f"[b]{n}[/b]  {escape(s.title)}  [dim]{s.id} v{s.version}[/dim]"
                                        for n, s in enumerate(shown.suggestions, 1)))
            self.part("hint", "s starts the first · 1-9 starts that one")
        else:
            self.part("say", "")
            self.part("body", "No call script matches this ticket's category or text.")
            self.part("hint", "")
        self.part("collected", "")

    def part(self, name: str, content: str) -> None:
        """Update one part; none exists before the pane is built or once the console is closing."""
        for static in self.query(f"#script-{name}").results(Static):
            static.update(content)

    # --- keys -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "restart" and self.state is None or action == "back" and not self.running:
            return None  # an outcome is recorded on the ticket once reached: restart to change it
        if action == "choose":  # a number with nothing to choose goes on to the workbench (pane keys)
            choices = self.state.step.options if self.state else self.shown.suggestions if self.shown else ()
            return True if parameters and int(parameters[0]) <= len(choices) else None
        return True

    def action_choose(self, number: int) -> None:
        if self.state is None:
            if self.shown and 1 <= number <= len(self.shown.suggestions):
                self.start(self.shown.suggestions[number - 1].id)
            return
        if self.state.step.options:
            self.advance(lambda engine, state: engine.choose(state, number))

    def action_confirm(self) -> None:
        state = self.state
        if state is None or not self.built:
            return
        if state.finished:
            self.post_outcome()
        elif state.step.kind == "collect":
            value = self.query_one("#script-input", FieldInput).value
            self.advance(lambda engine, s: engine.answer(s, value))
        elif state.step.kind == "article":
            self.advance(lambda engine, s: engine.answer(s, ""))

    @on(Input.Submitted, "#script-input")
    def field_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    @on(FieldInput.BackRequested)
    def action_back(self) -> None:
        if self.running and self.state.answers:
            self.advance(lambda engine, s: engine.back(s))

    def action_restart(self) -> None:
        if self.state is not None:
            self.start(self.state.script.id)

    async def action_leave(self) -> None:
        await self.screen.run_action("pane(1)")

    def advance(self, move) -> None:
        from opconsole.scripts import engine

        if not self.built:
            return
        try:
            state = move(engine, self.state)
        except OpconsoleError as exc:
            self.part("error", escape(str(exc)))  # the typed value stays in the field
            return
        self.part("error", "")
        if state.step.kind == "collect" and state.step.id != self.state.step.id:
            self.query_one("#script-input", FieldInput).value = state.collected.get(state.step.text, "")
        if state.step.kind == "article" and state.step.id != self.state.step.id:
            self.post_message(self.ArticleShown(state.step.text))
        self.state = state
        self.render_state()
        self.saves_sent += 1
        self.save(self.shown.run, state, self.saves_sent)

    @work(thread=True, group="script-save")
    def save(self, run: Run, state: RunState, number: int) -> None:
        with self.save_lock:
            if number < self.saves_done:
                return  # a newer answer was saved already
            self.saves_done = number
            try:
                self.runs().save(run, state)
            except OpconsoleError as exc:
                self.app.call_from_thread(self.part, "error", escape(str(exc)))
                return
        if state.finished:
            self.app.call_from_thread(self.post_outcome)

    def post_outcome(self) -> None:
        if self.shown is not None and self.state is not None and self.state.finished:
            self.post_message(self.Outcome(self.shown.key, self.state.outcome(self.shown.values)))

    # --- starting -----------------------------------------------------------------------------------

    def start_best(self) -> bool:
        """`s` on the workbench: resume the ticket's run, else start the best suggestion. False if neither."""
        if self.state is not None:
            return True
        if self.shown is None or not self.shown.suggestions:
            return False
        self.start(self.shown.suggestions[0].id)
        return True

    def start(self, script_id: str, carried: dict[str, str] | None = None) -> None:
        if self.shown is not None:
            self.generation += 1
            self.starting = True  # from here: starting takes the ticket, which may move it out of the view
            self.start_run(self.shown.key, script_id, carried, self.generation)

    @work(thread=True, group="script-start")
    def start_run(self, key: str, script_id: str, carried: dict[str, str] | None, generation: int) -> None:
        try:
            runs = self.runs()
            runs.start(key, script_id, carried)
            found = runs.for_ticket(key)
        except OpconsoleError as exc:
            self.app.call_from_thread(self.start_failed, escape(str(exc)))
            return
        self.app.call_from_thread(self.display_ticket, found, generation)

    def start_failed(self, message: str) -> None:
        self.starting = False
        self.part("error", message)


def hint_for(step) -> str:
    if step.options:
        return "1-9 answers · backspace back · ctrl+r restart · esc queue"
    if step.kind == "collect":
        return "enter confirms · backspace in an empty field goes back · esc queue"
    if step.is_outcome:
        return "enter opens the " + {"resolve": "resolve form", "escalate": "escalation form",
                                     "continue": "next script"}[step.kind] + " · ctrl+r restart"
    return "enter goes on · backspace back"
