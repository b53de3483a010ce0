"""App-wide messages."""

from __future__ import annotations

from textual.message import Message


class StoreChanged(Message):
    """The store changed: this console's write or another process's. Visible widgets re-read."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreChanged)
