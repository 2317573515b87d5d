"""Why seat.hold.queue is a quorum queue with at-least-once dead-lettering (docs/design.md, timers): a timer that
expires while its dead-letter target is missing is kept by the broker and delivered once the target is back,
never dropped. Uses the same queue arguments as definitions.json on scratch queues of the test vhost.

RabbitMQ's at-least-once dead-letter worker retries an unroutable dead letter after its publisher confirm
timeout (`dead_letter_worker_publisher_confirm_timeout`, 180 s by default), so this test waits that long."""
import time
import uuid

import pika

from trcommon.amqp import load_definitions


def test_a_timer_expiring_while_its_dead_letter_target_is_gone_is_delivered_once_it_is_back(amqp_url):
    hold_args = next(q for q in load_definitions()["queues"] if q["name"] == "seat.hold.queue")["arguments"]
    suffix = uuid.uuid4().hex[:8]
    hold, dlx, target = f"t.hold.{suffix}", f"t.dlx.{suffix}", f"t.release.{suffix}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.confirm_delivery()
    try:
        ch.exchange_declare(dlx, "direct", durable=True)
        ch.queue_declare(hold, durable=True, arguments={**hold_args, "x-dead-letter-exchange": dlx,
                                                         "x-dead-letter-routing-key": "release"})
        for i in range(3):
            ch.basic_publish("", hold, f"timer-{i}".encode(), pika.BasicProperties(delivery_mode=2,
                                                                                  expiration="500"))
        time.sleep(3)       # expired with nowhere to go
        ch.queue_declare(target, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_bind(target, dlx, "release")
        restored = time.monotonic()
        got = []
        while len(got) < 3 and time.monotonic() - restored < 240:
            _method, _props, body = ch.basic_get(target, auto_ack=True)
            if body is None:
                conn.sleep(1)
            else:
                got.append(body)
        delay = time.monotonic() - restored
        assert sorted(got) == [b"timer-0", b"timer-1", b"timer-2"], f"lost timers; got {got} after {delay:.0f}s"
        print(f"all timers delivered {delay:.0f}s after the dead-letter target came back")
    finally:
        for q in (hold, target):
            ch.queue_delete(q)
        ch.exchange_delete(dlx)
        conn.close()
