"""Globally unique ids made locally: UUIDv7, so tickets created at many offline sites never collide
and still sort by creation time."""


def new_id() -> str:
    from uuid6 import uuid7  # imported on first use: it pulls in importlib.metadata, ~13 ms of start-up

    return str(uuid7())
