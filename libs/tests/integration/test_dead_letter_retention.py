"""Why seat.hold.queue is a quorum queue with at-least-once dead-lettering (docs/design.md, timers): a timer that
expires while its dead-letter target is missing is kept by the broker and delivered once the target is back,
never dropped. Uses the same queue arguments as definitions.json on scratch queues of the test vhost.

RabbitMQ's at-least-once dead-letter worker retries an unroutable dead letter after its publisher confirm
timeout (`dead_letter_worker_publisher_confirm_timeout`, 180 s by default). The scenario is started by a fixture
with this folder's first test (conftest.py) and this test runs late, so that wait passes beside the other tests
instead of adding three minutes to the suite; run alone, it waits here."""
import pytest


@pytest.mark.runs_late
def test_a_timer_expiring_while_its_dead_letter_target_is_gone_is_delivered_once_it_is_back(timers_without_target):
    got, delay = timers_without_target.collect(within_s=240)
    # At-least-once: a timer may come twice (a broker restart meanwhile), never not at all.
    assert set(got) == set(timers_without_target.timers), (
        f"lost timers; got {got} {delay:.0f}s after the dead-letter target came back")
    print(f"all timers delivered within {delay:.0f}s after the dead-letter target came back")
