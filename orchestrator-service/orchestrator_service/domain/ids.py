"""Identifiers as the public API receives them: a path, body or claim value that is not a UUID names nothing, and is
refused at the edge before any remote call."""
from __future__ import annotations

from trcommon.errors import InvalidInput
from trcontracts.base import UUID_PATTERN, canonical_uuid

__all__ = ["UUID_PATTERN", "canonical_uuid", "required_uuid"]


def required_uuid(name: str, value: object) -> str:
    """`value` as a canonical UUID; anything else is a 400 naming `name` (a path parameter or field)."""
    canonical = canonical_uuid(value)
    if canonical is None:
        raise InvalidInput("request is invalid", details=[
            {"field": name, "message": "must be a UUID (8-4-4-4-12 hexadecimal digits)"}])
    return canonical
