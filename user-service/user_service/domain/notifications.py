"""What a fan is told, per kind of notification (trcontracts.notifications): one short SMS line and an e-mail.

Plain text from the message's `data`; a field that is missing is left out of the sentence rather than shown empty,
so a message from a publisher that sends fewer fields still reads well.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trcontracts.notifications import NotificationKind

BRAND = "TicketRemaster"


@dataclass(frozen=True)
class Message:
    sms: str
    subject: str
    body: str


def _text(value: object, limit: int) -> str:
    """A publisher's text on one line (it may end up in an e-mail header) and bounded (an SMS is short)."""
    line = " ".join(str(value).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _ref(label: str, data: Mapping, key: str) -> str:
    """`order 1a2b3c4d`: the first 8 characters of the id, enough for a fan to tell their orders apart."""
    value = data.get(key)
    return f"{label} {' '.join(str(value).split())[:8]}" if value else f"your {label}"


def _event(data: Mapping) -> str:
    name = data.get("event_name")
    if name:
        return _text(name, 80)
    if data.get("event_id"):
        return _ref("event", data, "event_id")
    return "your event"


def _seats(data: Mapping) -> str:
    seats = data.get("seat_ids")
    count = len(seats) if isinstance(seats, list) else 1
    return f"{count} seat" + ("" if count == 1 else "s")


def _credits(data: Mapping) -> str | None:
    amount = data.get("amount")
    if amount is None or isinstance(amount, bool):
        return None
    return f"{amount} credit" + ("" if amount == 1 else "s")


def _reason(data: Mapping) -> str:
    return f" ({_text(data['reason'], 120)})" if data.get("reason") else ""


def _order_confirmed(d: Mapping) -> tuple[str, str]:
    paid = _credits(d)
    return (f"{_ref('order', d, 'order_id')} confirmed",
            f"{_seats(d)} for {_event(d)}" + (f", {paid}" if paid else "") + ". Your tickets are in the app.")


def _hold_expired(d: Mapping) -> tuple[str, str]:
    return (f"hold on {_seats(d)} for {_event(d)} expired",
            f"{_ref('order', d, 'order_id')} was not paid in time; nothing was charged.")


def _refund_made(d: Mapping) -> tuple[str, str]:
    paid = _credits(d)
    return (f"{_ref('order', d, 'order_id')} refunded",
            (f"{paid} back to your balance" if paid else "the credits are back in your balance")
            + f" for {_seats(d)} for {_event(d)}{_reason(d)}.")


def _transfer_offered(d: Mapping) -> tuple[str, str]:
    price = _credits(d)
    return (f"a seat for {_event(d)} is offered to you",
            f"{_ref('transfer', d, 'transfer_id')}" + (f" for {price}" if price else "")
            + ". Confirm it in the app before it expires.")


def _transfer_completed(d: Mapping) -> tuple[str, str]:
    price = _credits(d)
    return (f"{_ref('transfer', d, 'transfer_id')} completed",
            f"the seat for {_event(d)} changed hands" + (f" for {price}" if price else "") + ".")


def _transfer_reversed(d: Mapping) -> tuple[str, str]:
    price = _credits(d)
    return (f"{_ref('transfer', d, 'transfer_id')} reversed",
            f"the seat for {_event(d)} went back to its seller" + (f" and {price} to the buyer" if price else "")
            + ".")


def _transfer_cancelled(d: Mapping) -> tuple[str, str]:
    return (f"{_ref('transfer', d, 'transfer_id')} cancelled",
            f"the seat for {_event(d)} was not transferred{_reason(d)}; nothing was charged.")


def _event_cancelled(d: Mapping) -> tuple[str, str]:
    return (f"{_event(d)} is cancelled",
            f"it will not take place{_reason(d)}. Every order for it is refunded to your balance.")


_TEXTS: dict[NotificationKind, Callable[[Mapping], tuple[str, str]]] = {
    NotificationKind.ORDER_CONFIRMED: _order_confirmed,
    NotificationKind.HOLD_EXPIRED: _hold_expired,
    NotificationKind.REFUND_MADE: _refund_made,
    NotificationKind.TRANSFER_OFFERED: _transfer_offered,
    NotificationKind.TRANSFER_COMPLETED: _transfer_completed,
    NotificationKind.TRANSFER_REVERSED: _transfer_reversed,
    NotificationKind.TRANSFER_CANCELLED: _transfer_cancelled,
    NotificationKind.EVENT_CANCELLED: _event_cancelled,
}


def render(kind: NotificationKind, data: Mapping) -> Message:
    """`{BRAND}: <headline> — <detail>` for the SMS; the headline as the e-mail's subject."""
    headline, detail = _TEXTS[kind](data)
    sms = f"{BRAND}: {headline} — {detail}"
    subject = f"{BRAND}: {headline[0].upper()}{headline[1:]}"
    body = f"{headline[0].upper()}{headline[1:]}: {detail}\n\n— {BRAND}\n"
    return Message(sms=sms, subject=subject, body=body)


def has_nul(value: object) -> bool:
    """Whether any text in `value` holds NUL, which PostgreSQL cannot store (text or jsonb)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False
