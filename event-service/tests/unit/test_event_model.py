from datetime import datetime, timezone

import pytest

from event_service.domain.model import Event
from event_service.service_layer import services
from trcommon.errors import NotFound
from trcontracts import events
from trcontracts.events import EventStatus


def test_the_event_reply_carries_hall_and_venue_and_an_iso_time():
    at = datetime(2030, 1, 2, 20, tzinfo=timezone.utc)
    e = Event("e1", "Gig", "v1", "Arena", "h1", "Hall A", at, "", EventStatus.DRAFT, None, 0, at, at)
    d = events.Event.model_validate(e, from_attributes=True).model_dump(mode="json")
    assert d["hall_id"] == "h1" and d["venue_id"] == "v1"
    assert d["starts_at"] == "2030-01-02T20:00:00+00:00"


def test_malformed_event_id_is_not_found_without_touching_the_database():
    def no_db():
        raise AssertionError("the database must not be queried for a malformed id")

    with pytest.raises(NotFound):
        services.get_event(no_db, "../etc/passwd")


def _event(status: EventStatus, step: int = 0, reason: str | None = None) -> Event:
    at = datetime(2030, 1, 2, 20, tzinfo=timezone.utc)
    return Event("e1", "Gig", "v1", "Arena", "h1", "Hall A", at, "", status, reason, step, at, at)


def test_a_draft_goes_on_sale_and_publishing_again_changes_nothing():
    on_sale = _event(EventStatus.DRAFT).publish()
    assert on_sale.status is EventStatus.ON_SALE
    assert on_sale.publish() == on_sale


@pytest.mark.parametrize("status", [EventStatus.CANCELLING, EventStatus.CANCELLED])
def test_an_event_being_or_already_cancelled_cannot_go_on_sale(status):
    from event_service.domain.model import EventCancelled

    with pytest.raises(EventCancelled):
        _event(status).publish()


@pytest.mark.parametrize("status", [EventStatus.DRAFT, EventStatus.ON_SALE])
def test_cancelling_starts_at_step_zero_with_its_reason_and_keeps_the_first_reason(status):
    cancelling = _event(status, step=4).begin_cancel("Storm")
    assert (cancelling.status, cancelling.cancel_reason, cancelling.cancel_step) == (
        EventStatus.CANCELLING, "Storm", 0)
    assert cancelling.begin_cancel("Other") == cancelling
    done = cancelling.finish_cancel()
    assert done.begin_cancel("Other") == done and done.cancel_reason == "Storm"


def test_progress_only_grows_and_only_while_cancelling():
    from event_service.domain.model import InvalidTransition

    cancelling = _event(EventStatus.CANCELLING)
    assert cancelling.cancel_progress(3).cancel_progress(1).cancel_step == 3
    for status in (EventStatus.DRAFT, EventStatus.ON_SALE, EventStatus.CANCELLED):
        with pytest.raises(InvalidTransition):
            _event(status).cancel_progress(1)


def test_only_a_cancelling_event_finishes_its_cancellation_and_finishing_again_changes_nothing():
    from event_service.domain.model import InvalidTransition

    done = _event(EventStatus.CANCELLING, step=2).finish_cancel()
    assert (done.status, done.cancel_step) == (EventStatus.CANCELLED, 2)
    assert done.finish_cancel() == done
    for status in (EventStatus.DRAFT, EventStatus.ON_SALE):
        with pytest.raises(InvalidTransition):
            _event(status).finish_cancel()
