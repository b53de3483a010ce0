"""Where the store lives: `--db PATH`, else `OPCONSOLE_DB`, else the user data directory."""

from __future__ import annotations

import os
from pathlib import Path


def store_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("OPCONSOLE_DB")
    if from_env:
        return Path(from_env)
    from platformdirs import user_data_path

    return user_data_path("opconsole", appauthor=False) / "opconsole.db"
