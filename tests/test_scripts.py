"""Call scripts: the checker (one fixture per problem kind, exact lines), the engine (properties),
every bundled script walked to each of its outcomes, runs kept with tickets, and the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import deque
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opconsole.config import load_config
from opconsole.errors import InvalidInput
from opconsole.scripts import engine
from opconsole.scripts.library import BUNDLED, load_library
from opconsole.scripts.model import Script, Step, template_names
from opconsole.scripts.runs import ScriptRuns, script_stats
from opconsole.services import Desk
from opconsole.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "scripts"
EXAMPLE = Path(engine.__file__).with_name("example.toml")
EXPECT = re.compile(r"^# expect (\d+): (.*)$")
CONFIG = load_config(None)


def library_scripts() -> list[Script]:
    library = load_library(CONFIG, [BUNDLED, EXAMPLE])
    return sorted(library.scripts.values(), key=lambda s: s.id)


# --- the checker ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.toml")))
def test_checker_reports_each_problem_at_its_line(fixture: str):
    path = FIXTURES / fixture
    expected = sorted((int(m.group(1)), m.group(2)) for line in path.read_text("utf-8").splitlines()
                      if (m := EXPECT.match(line)))
    assert expected, f"{fixture} declares no expected problem"
    library = load_library(CONFIG, [path], articles={"kb-map-network-drive"})
    found = sorted((p.line, p.message) for p in library.problems)
    assert len(found) == len(expected), found
    for line, text in expected:
        assert any(found_line == line and text in message for found_line, message in found), \
            f"expected line {line}: {text!r}; got {found}"
    assert all(p.path == str(path) for p in library.problems)
    assert not library.scripts, "a script with problems must be left out of the library"


def test_a_script_id_used_twice_is_reported_and_the_rest_still_load(tmp_path: Path):
    shutil.copy(EXAMPLE, tmp_path / "a.toml")
    shutil.copy(EXAMPLE, tmp_path / "b.toml")
    (tmp_path / "c.toml").write_text("id = 'broken'\n[steps.x\n", "utf-8")
    library = load_library(CONFIG, [tmp_path])
    assert list(library.scripts) == ["example-mapped-drive"]
    messages = [str(p) for p in library.problems]
    assert any(m.startswith(f"{tmp_path / 'b.toml'}:8: script id 'example-mapped-drive' is already used by")
               for m in messages), messages
    assert any(m.startswith(f"{tmp_path / 'c.toml'}:2: not valid TOML") for m in messages), messages


def test_a_configured_script_replaces_the_bundled_one_with_its_id(tmp_path: Path):
    bundled = library_scripts()[0]
    site = tmp_path / "site"
    site.mkdir()
    (site / "mine.toml").write_text(bundled.source.replace(f'title = "{bundled.title}"', 'title = "Our own"'),
                                    "utf-8")
    config_file = tmp_path / "config.toml"
    config_file.write_text('[scripts]\ndirs = ["site"]\n', "utf-8")
    library = load_library(load_config(config_file))
    assert library.scripts[bundled.id].title == "Our own"
    assert not library.problems


def test_the_example_and_every_bundled_script_pass_the_checker():
    library = load_library(CONFIG, [BUNDLED, EXAMPLE])
    assert not library.problems, "\n".join(map(str, library.problems))
    bundled = [s for s in library.scripts.values() if s.path != str(EXAMPLE)]
    assert len(bundled) >= 12
    for script in bundled:
        kinds = {s.kind for s in script.steps.values()}
        assert {"resolve", "escalate"} <= kinds, f"{script.id} lacks a resolve or an escalate outcome"
        assert script.categories and script.keywords, script.id


# --- the engine ------------------------------------------------------------------------------------

SAMPLES = ["MSK-PC-042", "ivanova.a", "ФН ошибка 235", "12", "0042", "Ошибка 0x80070005", "да"]


def field_values(step: Step) -> st.SearchStrategy[str]:
    if step.field_type == "choice":
        return st.sampled_from(step.choices)
    if step.field_type == "number":
        low = step.minimum if step.minimum is not None else 0
        high = step.maximum if step.maximum is not None else low + 1000
        return st.integers(int(low), int(high)).map(str)
    if step.field_type == "yesno":
        return st.sampled_from(["да", "нет", "yes", "no"])
    if step.field_type == "phone":
        return st.sampled_from(["+7 916 123-45-67", "8 (495) 123-45-67", "+79031234567"])
    if step.pattern:
        return st.from_regex(step.pattern, fullmatch=True).filter(lambda v: v.strip() == v and v)
    return st.sampled_from(SAMPLES)


def answer_any(state: engine.RunState) -> engine.RunState:
    """The first answer, or a sample value, for the current step."""
    step = state.step
    if step.options:
        return engine.choose(state, 1)
    if step.kind == "collect":
        return engine.answer(state, step.choices[0] if step.choices else "ivanova.a")
    return engine.answer(state, "")


def answer_strategy(state: engine.RunState, data) -> engine.RunState:
    step = state.step
    if step.options:
        return engine.choose(state, data.draw(st.integers(1, len(step.options))))
    if step.kind == "collect":
        return engine.answer(state, data.draw(field_values(step)))
    return engine.answer(state, "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_valid_answers_lead_to_a_step_or_an_outcome_and_back_restores_the_state(data):
    script = data.draw(st.sampled_from(library_scripts()))
    state = engine.start(script)
    for _ in range(data.draw(st.integers(0, 40))):
        if state.finished:
            with pytest.raises(InvalidInput):
                engine.answer(state, "")
            break
        before = state
        state = answer_strategy(state, data)
        assert state.step.id in script.steps
        assert state.path == before.path + (state.step.id,)
        assert engine.back(state) == before
        assert engine.replay(script, state.answers) == state


def paths_to_outcomes(script: Script) -> dict[str, list[str]]:
    """A shortest path of steps from the start to each outcome step."""
    paths = {script.start: [script.start]}
    queue = deque([script.start])
    while queue:
        current = queue.popleft()
        for target in script.steps[current].successors():
            if target not in paths:
                paths[target] = paths[current] + [target]
                queue.append(target)
    return {s.id: paths[s.id] for s in script.steps.values() if s.is_outcome}


@pytest.mark.parametrize("script", library_scripts(), ids=lambda s: s.id)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_script_walks_to_each_of_its_outcomes(script: Script, data):
    outcomes = paths_to_outcomes(script)
    assert outcomes
    for outcome, path in outcomes.items():
        state = engine.start(script)
        for here, there in pairwise(path):
            step = script.steps[here]
            if step.options:
                number = next(n for n, o in enumerate(step.options, 1) if o.next == there)
                state = engine.choose(state, number)
            else:
                state = answer_strategy(state, data)
            assert state.step.id == there
        assert state.finished and state.step.id == outcome
        ticket = {"key": "MSK-000001", "subject": "s", "caller": "c", "phone": "+7", "site": "x"}
        result = state.outcome(ticket)
        templates = [state.step.outcome.get("note", ""), state.step.outcome.get("reason", ""),
                     *state.step.outcome.get("fields", {}).values()]
        unfilled = {name for t in templates for name in template_names(t)} - set(state.values(ticket))
        assert not unfilled, f"{outcome}: {unfilled} not collected on the path {path}"
        if result["kind"] == "escalate":
            assert CONFIG.groups[result["group"]].line > 1


def test_field_validation_says_what_is_expected():
    script = load_library(CONFIG, [EXAMPLE]).scripts["example-mapped-drive"]
    state = engine.choose(engine.start(script), 2)  # all drives: the operator checks the server
    state = engine.choose(state, 1)
    state = engine.answer(state, r"\\fs01\sales")
    with pytest.raises(InvalidInput, match="does not look like a valid account_login"):
        engine.answer(state, "1 bad login")
    state = engine.answer(state, "ivanova.a")
    with pytest.raises(InvalidInput, match="is not one of: read, write"):
        engine.answer(state, "everything")
    assert engine.answer(state, "2").collected["access_level"] == "write"
    with pytest.raises(InvalidInput, match="choose 1 to 2"):
        engine.choose(engine.start(script), 3)


# --- runs kept with tickets ----------------------------------------------------------------------------

@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    store = Store.open(tmp_path / "runs.db")
    desk = Desk(store, CONFIG, "op1")
    desk.ensure_first_operator()
    return desk


def test_a_run_resumes_on_the_version_it_started_with_and_ends_in_the_ticket(desk: Desk, tmp_path: Path):
    ticket = desk.register(phone="+79161234567", subject="Пропал сетевой диск", channel="phone")
    first = load_library(CONFIG, [EXAMPLE])
    run = ScriptRuns(desk, first).start(ticket.key, "example-mapped-drive")
    state = engine.answer(engine.choose(run.state, 1), r"S: \\fs01\sales")
    ScriptRuns(desk, first).save(run, state)

    newer = tmp_path / "newer.toml"  # the script changes while the run is half done
    newer.write_text(EXAMPLE.read_text("utf-8").replace("version = 1", "version = 2")
                     .replace("Is the drive back", "Is the drive there again"), "utf-8")
    reopened = Store.open(desk.store.path, create=False)
    runs = ScriptRuns(Desk(reopened, CONFIG, "op1"), load_library(CONFIG, [newer]))
    resumed = runs.active(ticket.key)
    assert resumed.state.script.version == 1 and resumed.state.path == state.path
    state = engine.answer(resumed.state, "")
    assert state.step.text.startswith("Is the drive back")
    state = engine.choose(state, 1)
    runs.save(resumed, state)

    assert runs.active(ticket.key) is None
    done = reopened.ticket(ticket.key)
    assert done.fields["folder_path"] == r"S: \\fs01\sales"
    event = reopened.last_event_for(done.id)
    assert event.op == "ticket.script" and event.version == done.version
    assert "finished: resolve (instructions)" in event.note and "→ One drive" in event.note
    [stats] = script_stats(reopened)
    assert (stats.started, stats.outcomes["resolve"], stats.abandoned) == (1, 1, 0)


def test_starting_another_script_abandons_the_run_and_keeps_what_it_collected(desk: Desk):
    ticket = desk.register(phone="+79161234567", subject="Диск", channel="phone")
    library = load_library(CONFIG, [EXAMPLE])
    runs = ScriptRuns(desk, library)
    run = runs.start(ticket.key, "example-mapped-drive")
    runs.save(run, engine.answer(engine.choose(run.state, 1), "X:"))
    runs.start(ticket.key, "example-mapped-drive")
    assert desk.store.ticket(ticket.key).fields["folder_path"] == "X:"
    [stats] = script_stats(desk.store)
    assert (stats.started, stats.abandoned, stats.active) == (2, 1, 1)
    assert stats.abandoned_at == [("reconnect-article", 1)]


# --- the command line --------------------------------------------------------------------------------

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPCONSOLE_OPERATOR": "op1", "OPCONSOLE_CONFIG": str(cwd / "none.toml")}
    return subprocess.run([sys.executable, "-m", "opconsole", "--db", str(cwd / "cli.db"), *args],
                          capture_output=True, text=True, cwd=cwd, env=env, check=False)


def test_cli_lists_checks_and_counts_scripts(tmp_path: Path):
    (tmp_path / "none.toml").write_text("", "utf-8")
    listed = cli("scripts", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    scripts = json.loads(listed.stdout)
    assert len(scripts) >= 12 and all(s["version"] >= 1 and s["steps"] > 3 for s in scripts)

    checked = cli("scripts", "check", cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout == "", checked.stdout + checked.stderr
    bad = cli("scripts", "check", str(FIXTURES / "unreachable.toml"), str(EXAMPLE), cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [(f"{FIXTURES / 'unreachable.toml'}:9: step 'orphan' is unreachable: "
                                        "no step leads to it from 'start'")]
    assert "2 script file(s) checked: 1 fine, 1 with 1 problem(s)" in bad.stderr

    stats = cli("scripts", "stats", "--json", cwd=tmp_path)
    assert stats.returncode == 0 and json.loads(stats.stdout) == []
    with Store.open(tmp_path / "cli.db") as store:  # two runs on one ticket: the first is abandoned
        desk = Desk(store, CONFIG, "op1")
        desk.ensure_first_operator()
        ticket = desk.register(phone="+79161234567", subject="Забыл пароль", channel="phone")
        runs = ScriptRuns(desk, load_library(CONFIG))
        first = runs.start(ticket.key, "password-reset")
        runs.save(first, answer_any(first.state))
        runs.start(ticket.key, "password-reset")
    stats = cli("scripts", "stats", "--json", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    [row] = json.loads(stats.stdout)
    assert (row["script"], row["started"], row["abandoned"], row["active"]) == ("password-reset", 2, 1, 1)
    assert row["outcomes"] == {"resolve": 0, "escalate": 0, "continue": 0}
    assert row["abandoned_at"] == [{"step": answer_any(first.state).step.id, "runs": 1}]
    table = cli("scripts", "stats", cwd=tmp_path)
    assert table.stdout.splitlines()[1].split()[:7] == ["password-reset", "2", "0", "0", "0", "1", "1"]


def test_suggestions_with_equal_titles_and_scores_do_not_break(tmp_path: Path):
    for name in ("one", "two"):
        (tmp_path / f"{name}.toml").write_text(EXAMPLE.read_text("utf-8").replace(
            'id = "example-mapped-drive"', f'id = "example-{name}"'), "utf-8")
    library = load_library(CONFIG, [tmp_path])
    assert [s.id for s in library.suggest("file_access.drive_mapping", "")] == ["example-one", "example-two"]


def test_a_choice_answer_in_other_digits_is_refused_not_raised():
    script = load_library(CONFIG, [EXAMPLE]).scripts["example-mapped-drive"]
    state = engine.answer(engine.choose(engine.choose(engine.start(script), 2), 1), r"\\fs01\sales")
    state = engine.answer(state, "ivanova.a")
    with pytest.raises(InvalidInput, match="is not one of"):
        engine.answer(state, "²")


def test_a_late_save_does_not_bring_an_ended_run_back(desk: Desk):
    ticket = desk.register(phone="+79161234567", subject="Диск", channel="phone")
    runs = ScriptRuns(desk, load_library(CONFIG, [EXAMPLE]))
    first = runs.start(ticket.key, "example-mapped-drive")
    runs.start(ticket.key, "example-mapped-drive")  # restarted: the first run is abandoned
    with pytest.raises(InvalidInput, match="this script run has ended"):
        runs.save(first, engine.choose(first.state, 1))
    active = desk.store.conn.execute("SELECT count(*) FROM script_runs WHERE state = 'active'").fetchone()[0]
    assert active == 1


def test_a_continue_into_a_script_left_out_is_reported(tmp_path: Path):
    (tmp_path / "broken.toml").write_text('id = "broken"\ntitle = "Broken"\nversion = 1\n\n[steps.start]\n'
                                          'ask = "?"\noptions = [{ answer = "Yes", next = "nowhere" }]\n', "utf-8")
    (tmp_path / "hands-over.toml").write_text('id = "hands-over"\ntitle = "Hands over"\nversion = 1\n\n'
                                              '[steps.start]\ncontinue = "broken"\n', "utf-8")
    library = load_library(CONFIG, [tmp_path])
    assert not library.scripts
    assert f"{tmp_path / 'hands-over.toml'}:5: step 'start' continues in script 'broken', which is left out" \
           in "\n".join(map(str, library.problems))


def test_an_optional_field_does_not_count_for_an_escalation(tmp_path: Path):
    text = (FIXTURES / "escalation-incomplete.toml").read_text("utf-8")
    optional = text.replace('[steps.speed]\ncollect = "speed_test"\n', '[steps.speed]\ncollect = "speed_test"\n'
                            'required = false\n').replace('{ answer = "Skip it", next = "to-network" },\n', "")
    (tmp_path / "optional.toml").write_text(optional, "utf-8")
    messages = [p.message for p in load_library(CONFIG, [tmp_path / "optional.toml"]).problems]
    assert any("needs speed_test" in m for m in messages), messages


def test_numbers_must_be_finite_and_plain():
    step = Step(id="size", kind="collect", text="archive_size", line=1, field_type="number", next="x")
    for bad in ("nan", "inf", "1_000"):
        with pytest.raises(InvalidInput, match="is not a number"):
            engine.field_value(step, bad, "RU")
    assert engine.field_value(step, "2,5", "RU") == "2.5"
