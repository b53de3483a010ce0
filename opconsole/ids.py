"""Globally unique ids made locally: UUIDv7, so tickets created at many offline sites never collide
and still sort by creation time."""

from uuid6 import uuid7


def new_id() -> str:
    return str(uuid7())
