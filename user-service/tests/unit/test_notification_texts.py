import pytest

from trcontracts.notifications import NotificationKind
from user_service.domain.notifications import has_nul, render

FULL = {"order_id": "1a2b3c4d-0000-4000-8000-000000000000", "event_id": "e1e2e3e4-0000-4000-8000-000000000000",
        "transfer_id": "7f7f7f7f-0000-4000-8000-000000000000", "seat_ids": ["s1", "s2"], "amount": 100,
        "reason": "venue flooded", "event_name": "Spring Gala"}


def test_an_order_confirmation_names_the_order_seats_event_and_credits():
    message = render(NotificationKind.ORDER_CONFIRMED, FULL)
    assert message.sms == ("TicketRemaster: order 1a2b3c4d confirmed — 2 seats for Spring Gala, 100 credits. "
                           "Your tickets are in the app.")
    assert message.subject == "TicketRemaster: Order 1a2b3c4d confirmed"
    assert message.body.startswith("Order 1a2b3c4d confirmed: 2 seats for Spring Gala, 100 credits.")


def test_without_an_event_name_the_event_is_named_by_its_short_id():
    data = {k: v for k, v in FULL.items() if k != "event_name"}
    assert "for event e1e2e3e4," in render(NotificationKind.ORDER_CONFIRMED, data).sms


@pytest.mark.parametrize("kind", list(NotificationKind))
def test_every_kind_reads_well_with_all_fields_and_with_none(kind):
    for data in (FULL, {}):
        message = render(kind, data)
        assert message.sms.startswith("TicketRemaster: ") and len(message.sms) <= 160
        assert "None" not in message.sms and "  " not in message.sms
        assert "\n" not in message.subject


def test_a_publishers_text_is_kept_on_one_line_and_short():
    data = {**FULL, "event_name": "Gala\r\nBcc: everyone@example.com " + "x" * 200, "reason": "a\nb"}
    message = render(NotificationKind.EVENT_CANCELLED, data)
    assert "\r" not in message.subject and "\n" not in message.subject and "\n" not in message.sms
    assert len(message.subject) < 120


def test_one_seat_and_one_credit_are_singular():
    assert "1 seat for Spring Gala, 1 credit." in render(NotificationKind.ORDER_CONFIRMED,
                                                         {**FULL, "seat_ids": ["s1"], "amount": 1}).sms


def test_nul_is_found_anywhere_in_a_notifications_data():
    assert has_nul({"a": ["x", "y\x00"]}) and has_nul({"k\x00": 1}) and not has_nul({"a": ["x"], "b": 3})
