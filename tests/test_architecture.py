"""The one rule (ARCHITECTURE.md): the core never imports the UI, and neither do CLI subcommands."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import opconsole

UI_MODULES = {"opconsole.app", "opconsole.messages"}
CORE_MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(opconsole.__path__, "opconsole.")
    if name not in UI_MODULES | {"opconsole.__main__"} and not name.startswith(("opconsole.screens", "opconsole.widgets"))
)


def test_the_core_is_not_empty():
    assert {"opconsole.domain", "opconsole.store", "opconsole.services", "opconsole.cli"} <= set(CORE_MODULES)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_textual(module: str):
    probe = f"import sys, {module}; sys.exit(1 if any(m.split('.')[0] == 'textual' for m in sys.modules) else 0)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, f"{module} pulls in textual: {result.stderr}"


def test_import_linter_contract_holds():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a test dependency; install the [test] extra"
    result = subprocess.run([lint], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr
