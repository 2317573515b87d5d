"""Identifiers as the public API receives them: a path or claim value that is not a UUID names nothing."""
from __future__ import annotations

import uuid


def canonical_uuid(value: object) -> str | None:
    """The canonical text of a UUID, or None when `value` is not one."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None
