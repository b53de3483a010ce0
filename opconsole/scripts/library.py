"""The script library: the bundled scripts plus the site's own, checked, and matched to tickets.

A script with problems is left out and its problems are kept, so the console starts with the rest
and says which one failed and why; `opconsole scripts check` prints the same problems.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from opconsole.scripts.checker import check_script
from opconsole.domain import category_fit
from opconsole.errors import Problem
from opconsole.scripts.model import Script, parse_script

if TYPE_CHECKING:
    from opconsole.config import Config

BUNDLED = Path(__file__).with_name("bundled")


@dataclass
class Library:
    scripts: dict[str, Script] = field(default_factory=dict)  # the usable ones, by id
    problems: list[Problem] = field(default_factory=list)
    failed: dict[str, list[Problem]] = field(default_factory=dict)  # file -> its problems (left out)

    def get(self, script_id: str) -> Script | None:
        return self.scripts.get(script_id)

    def suggest(self, category: str | None, text: str, limit: int = 3) -> list[Script]:
        """Scripts for a ticket, best first: those for its exact category, then those whose keywords
        occur in its subject and description (more hits first; the same top-level category breaks ties)."""
        words = text.casefold()
        scored = []
        for script in self.scripts.values():
            hits = sum(1 for keyword in script.keywords if keyword.casefold() in words)
            fit = category_fit(category, script.categories)
            if fit == 2 or hits:
                scored.append((-(10 * (fit == 2) + 3 * hits + fit), script.title, script.id, script))
        return [entry[-1] for entry in sorted(scored, key=lambda entry: entry[:3])[:limit]]


def script_files(dirs: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in dirs:
        files.extend(sorted(p for p in directory.glob("*.toml") if p.is_file()))
    return files


def load_library(config: Config, paths: Iterable[Path] | None = None,
                 articles: Collection[str] | None = None) -> Library:
    """Read and check scripts: the files and directories in `paths`, else the bundled ones and the
    configured directories (a configured script replaces a bundled one with the same id)."""
    if paths is None:
        groups = [script_files([BUNDLED]), script_files(d for d in config.script_dirs if d.is_dir())]
        missing = [Problem(str(d), 1, "the configured script directory does not exist")
                   for d in config.script_dirs if not d.is_dir()]
    else:
        listed = [Path(p) for p in paths]
        groups = [[p for p in listed if p.is_file()] + script_files(p for p in listed if p.is_dir())]
        missing = [Problem(str(p), 1, "no such file or directory") for p in listed if not p.exists()]
    library = Library(problems=list(missing))
    parsed: dict[str, tuple[Script, list[Problem]]] = {}
    for files in groups:
        seen: dict[str, str] = {}
        for path in files:
            script, problems = read_script(path)
            if script is not None:
                if script.id in seen:
                    problems.append(Problem(str(path), script.lines.get("id", 1),
                                            f"script id {script.id!r} is already used by {seen[script.id]}"))
                else:
                    seen[script.id] = str(path)
                    parsed[script.id] = (script, problems)  # a later group replaces an earlier one
                    continue
            library.problems.extend(problems)
            library.failed[str(path)] = problems
    ids = set(parsed)
    checked = {sid: problems + check_script(script, config, scripts=ids, articles=articles)
               for sid, (script, problems) in parsed.items()}
    usable = {sid for sid, problems in checked.items() if not problems}
    while True:  # a script that continues in one left out cannot finish either
        stranded = {sid for sid in usable if any(step.kind == "continue" and step.text not in usable
                                                 for step in parsed[sid][0].steps.values())}
        if not stranded:
            break
        for sid in stranded:
            script = parsed[sid][0]
            checked[sid] = [Problem(script.path, step.line, f"step {step.id!r} continues in script {step.text!r}, "
                                    "which is left out for its own problems")
                            for step in script.steps.values() if step.kind == "continue" and step.text not in usable]
        usable -= stranded
    for sid, (script, _problems) in parsed.items():
        if sid in usable:
            library.scripts[sid] = script
        else:
            library.problems.extend(checked[sid])
            library.failed[script.path] = checked[sid]
    return library


def read_script(path: Path) -> tuple[Script | None, list[Problem]]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        return None, [Problem(str(path), 1, f"cannot read the file ({exc.strerror})")]
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), 1, f"not UTF-8 text (byte {exc.start})")]
    return parse_script(path, text)
