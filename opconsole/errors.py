"""Errors the operator (or the script driving the CLI) is meant to read, and problems in files people write.

Every error here carries a complete, plain message; the CLI prints it and exits 2, the console shows
it as a notification. Anything else that escapes is a bug.
"""

from dataclasses import dataclass


class OpconsoleError(Exception):
    """Base class: a refused action or bad input, with a message for people."""


class InvalidInput(OpconsoleError):
    """A value the operator gave is not acceptable (unknown category, malformed phone...)."""


class NotFound(OpconsoleError):
    """A ticket, contact, operator or group that does not exist."""


class IllegalTransition(OpconsoleError):
    """The ticket's status does not allow the requested action."""


class EscalationIncomplete(OpconsoleError):
    """An escalation lacks fields its target group requires."""

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = missing


class Conflict(OpconsoleError):
    """The ticket changed since the copy being saved was read."""


class PermissionDenied(OpconsoleError):
    """The acting operator's role does not allow the action."""


class StoreError(OpconsoleError):
    """The store file cannot be used: corrupt, foreign, newer schema, unreadable."""


class ConfigError(OpconsoleError):
    """The configuration file is malformed or inconsistent."""


@dataclass(frozen=True)
class Problem:
    """A problem in a file people write (a call script, a KB article): where, and what is wrong."""
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"
