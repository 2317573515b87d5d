"""Venues, halls and events. Plain data: no framework imports (the reply is trcontracts.events.Event)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Event:
    event_id: str
    name: str
    venue_id: str
    venue_name: str
    hall_id: str
    hall_name: str
    starts_at: datetime
    description: str


@dataclass(frozen=True)
class Hall:
    hall_id: str
    name: str


@dataclass(frozen=True)
class Venue:
    venue_id: str
    name: str
    address: str
    halls: tuple[Hall, ...]
