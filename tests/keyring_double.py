"""A stand-in for an OS keyring in tests (CI machines have none): secrets in the JSON file named by
$OPCONSOLE_TEST_KEYRING. Selected with PYTHON_KEYRING_BACKEND=keyring_double.FileKeyring."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def file(self) -> Path:
        return Path(os.environ["OPCONSOLE_TEST_KEYRING"])

    def _all(self) -> dict[str, str]:
        return json.loads(self.file.read_text()) if self.file.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._all().get(f"{service} {username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self.file.write_text(json.dumps(self._all() | {f"{service} {username}": password}))

    def delete_password(self, service: str, username: str) -> None:
        secrets = self._all()
        secrets.pop(f"{service} {username}", None)
        self.file.write_text(json.dumps(secrets))
