"""Venues, halls and events. Plain data: no framework imports."""
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

    def to_dict(self) -> dict:
        return {"event_id": self.event_id, "name": self.name, "venue_id": self.venue_id,
                "venue_name": self.venue_name, "hall_id": self.hall_id, "hall_name": self.hall_name,
                "starts_at": self.starts_at.isoformat(), "description": self.description}
