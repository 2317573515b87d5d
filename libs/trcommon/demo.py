"""Identifiers of the demo data (README: demo accounts), deterministic so every service seeds the same ids and the README can
print them. Each service seeds its own part through its own repositories."""
import uuid

_NS = uuid.UUID("6f1c2a7e-3b8d-4c55-9e0a-5d7b9c1e2f30")


def demo_id(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


VENUE_ID = demo_id("venue:demo-arena")
HALL_A_ID = demo_id("hall:demo-arena:hall-a")
HALL_B_ID = demo_id("hall:demo-arena:hall-b")
EVENT_ID = demo_id("event:demo-concert")
SEAT_PRICE = 50
PASSWORD = "demo-password"
START_CREDITS = 10000

# 200 seats: sections A and B, rows 1-10, numbers 1-10.
SEATS = [(section, str(row), number) for section in ("A", "B") for row in range(1, 11) for number in range(1, 11)]


def seat_id(section: str, row: str, number: int) -> str:
    return demo_id(f"seat:{EVENT_ID}:{section}-{row}-{number}")


# email, role, flagged, credits, phone
USERS = [
    ("fan1@demo.test", "fan", False, START_CREDITS, "+6590000001"),
    ("fan2@demo.test", "fan", False, START_CREDITS, "+6590000002"),
    ("flagged@demo.test", "fan", True, START_CREDITS, "+6590000003"),
    ("scanner@demo.test", "scanner", False, 0, "+6590000004"),
    ("admin@demo.test", "admin", False, 0, "+6590000005"),
]


def user_id(email: str) -> str:
    return demo_id(f"user:{email}")
