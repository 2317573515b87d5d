"""The notification consumer against real PostgreSQL and RabbitMQ (a test vhost with the repository's topology):
each notification delivered once per id to the SMS backend and email_outbox, whatever the broker does; unreadable
messages and unknown users parked; the e-mail sender against a local SMTP server (aiosmtpd)."""
import json
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timezone

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import make_url
from trcommon import testing
from trcommon.devstack import free_port
from trcommon.testing import ChildProcess, TcpProxy, wait_until
from trcontracts.notifications import (
    EXCHANGE,
    PARKING_QUEUE,
    QUEUE,
    NotificationKind,
    routing_key,
)
from user_service.bootstrap import bootstrap
from user_service.entrypoints.notification_consumer import (
    EmailSender,
    NotificationConsumer,
)


class Broker(testing.Broker):
    def notify(self, body: bytes, key: str = "notify.order_confirmed") -> None:
        self.publish(EXCHANGE, key, body)


@pytest.fixture(scope="session")
def broker(amqp_url):
    return Broker(amqp_url)


@pytest.fixture
def consumer_settings(settings, amqp_url):
    return settings.model_copy(update={"amqp_url": amqp_url})


@pytest.fixture
def run_consumer(consumer_settings, broker):
    """Start notification consumers (with their e-mail sender) in threads; stopped after the test."""
    running = []

    def start(**overrides) -> NotificationConsumer:
        container = bootstrap(consumer_settings.model_copy(update=overrides))
        sender = EmailSender(container)
        sender.start()
        consumer = NotificationConsumer(container, sender=sender)
        consumer.sender = sender
        thread = threading.Thread(target=consumer.run, name="notification-consumer", daemon=True)
        thread.start()
        running.append((consumer, sender, thread, container))
        assert consumer.consuming.wait(10), "the notification consumer did not attach to the queue"
        return consumer

    yield start
    for consumer, sender, thread, container in running:
        consumer.stop()
        thread.join(10)
        sender.stop()
        container.engine.dispose()
    # No consumer of this test may take the next test's messages.
    assert wait_until(lambda: broker.consumers(QUEUE) == 0, 10, what="consumers to detach")


def _notification(user_id: str, kind: NotificationKind = NotificationKind.ORDER_CONFIRMED, **data) -> dict:
    order_id = str(uuid.uuid4())
    return {"notification_id": f"order:{order_id}:confirmed", "kind": str(kind), "user_id": user_id,
            "occurred_at": datetime.now(timezone.utc).isoformat(),
            "data": {"order_id": order_id, "event_id": str(uuid.uuid4()), "seat_ids": ["a", "b"], "amount": 100,
                     **data}}


def _body(message: dict) -> bytes:
    return json.dumps(message).encode()


def _emails(users, user_id: str) -> list:
    return users.sql("SELECT email, subject, body, notification_id, sent_at FROM email_outbox WHERE user_id = :u "
                     "ORDER BY id", {"u": user_id})


def _delivered(users, user):
    return lambda: users.outbox(user["phone"]) and _emails(users, user["user_id"])


def test_a_notification_writes_one_sms_and_one_email_for_its_user(users, client, broker, run_consumer):
    user = users.new()
    consumer = run_consumer()
    message = _notification(user["user_id"], event_name="Coldplay: Music of the Spheres")
    broker.notify(_body(message))
    wait_until(_delivered(users, user), 10, what="the SMS and the e-mail")
    short = message["data"]["order_id"][:8]
    assert users.outbox(user["phone"]) == [
        f"TicketRemaster: order {short} confirmed — 2 seats for Coldplay: Music of the Spheres, 100 credits. "
        "Your tickets are in the app."]
    [(email, subject, body, notification_id, sent_at)] = _emails(users, user["user_id"])
    assert (email, notification_id, sent_at) == (user["email"], message["notification_id"], None)
    assert subject == f"TicketRemaster: Order {short} confirmed" and "Coldplay" in body
    assert consumer.stats["delivered"] == 1
    listed = client.get(f"/internal/users/{user['user_id']}/notifications").get_json()["notifications"]
    assert [(n["notification_id"], n["kind"], n["data"]) for n in listed] == [
        (message["notification_id"], "ORDER_CONFIRMED", message["data"])]


def test_every_kind_has_its_text(users, broker, run_consumer):
    user = users.new()
    run_consumer()
    for kind in NotificationKind:
        message = {**_notification(user["user_id"], kind, transfer_id=str(uuid.uuid4()), reason="storm"),
                   "notification_id": f"{kind}:{uuid.uuid4()}"}
        broker.notify(_body(message), routing_key(kind))
    wait_until(lambda: len(users.outbox(user["phone"])) == len(NotificationKind), 10, what="one SMS per kind")
    texts = users.outbox(user["phone"])
    assert len(set(texts)) == len(NotificationKind)
    assert all(t.startswith("TicketRemaster: ") and len(t) < 200 for t in texts), texts


def test_a_backlog_is_delivered_in_batches_each_notification_once(users, broker, run_consumer):
    """Notifications waiting in the queue (a sale's confirmations) go out a batch per transaction: each one once,
    a repeat within the batch a duplicate, an unknown user and an unreadable message parked without holding up the
    rest."""
    fans = [users.new() for _ in range(10)]
    messages = [_notification(fans[i % 10]["user_id"]) for i in range(40)]
    for i, message in enumerate(messages):
        broker.notify(_body(message))
        if i == 20:
            broker.notify(_body(messages[3]))                              # the same notification again
            broker.notify(_body(_notification(str(uuid.uuid4()))))         # a user nobody knows
            broker.notify(b"{not json")
    consumer = run_consumer()
    wait_until(lambda: consumer.stats["delivered"] + consumer.stats["duplicate"] + consumer.stats["parked"] == 43,
               10, what="every message handled")
    assert (consumer.stats["delivered"], consumer.stats["duplicate"], consumer.stats["parked"],
            consumer.stats["unknown_user"]) == (40, 1, 2, 1)
    assert consumer.stats["batches"] < 43          # not one transaction per message
    for fan in fans:
        mine = {m["notification_id"] for m in messages if m["user_id"] == fan["user_id"]}
        assert {e[3] for e in _emails(users, fan["user_id"])} == mine
        assert len(_emails(users, fan["user_id"])) == 4 and len(users.outbox(fan["phone"])) == 4


def test_a_batch_that_fails_unexpectedly_is_retried_message_by_message(users, broker, run_consumer, monkeypatch):
    """A bug that one notification triggers fails its whole batch; each is then delivered on its own, so the
    others go out and only that one is handed back to the broker (whose delivery-limit parks it)."""
    from user_service.entrypoints import notification_consumer
    fan = users.new()
    messages = [_notification(fan["user_id"]) for _ in range(6)]
    cursed = messages[2]["notification_id"]
    real = notification_consumer.services.deliver_notifications

    def deliver(c, batch):
        if any(n.notification_id == cursed for n in batch):
            raise RuntimeError("a bug this notification triggers")
        return real(c, batch)

    monkeypatch.setattr(notification_consumer.services, "deliver_notifications", deliver)
    for message in messages:
        broker.notify(_body(message))
    consumer = run_consumer()
    wait_until(lambda: consumer.stats["delivered"] == 5, 10, what="the five others delivered")
    assert consumer.stats["failed"] >= 1 and consumer.stats["batches"] < 6
    assert {e[3] for e in _emails(users, fan["user_id"])} == {m["notification_id"] for m in messages} - {cursed}
    monkeypatch.undo()          # the bug fixed: the requeued one goes out too, and the queue is empty again
    wait_until(lambda: consumer.stats["delivered"] == 6, 10, what="the requeued notification delivered")


def test_the_same_notification_published_three_times_is_delivered_once(users, client, broker, run_consumer):
    user = users.new()
    consumer = run_consumer()
    body = _body(_notification(user["user_id"]))
    for _ in range(3):
        broker.notify(body)
    wait_until(lambda: consumer.stats["delivered"] + consumer.stats["duplicate"] == 3, 10, what="three deliveries")
    assert (consumer.stats["delivered"], consumer.stats["duplicate"]) == (1, 2)
    assert len(users.outbox(user["phone"])) == 1 and len(_emails(users, user["user_id"])) == 1
    assert len(client.get(f"/internal/users/{user['user_id']}/notifications").get_json()["notifications"]) == 1


def test_concurrent_consumers_deliver_a_repeated_notification_once(users, broker, run_consumer):
    user = users.new()
    consumers = [run_consumer(), run_consumer()]
    body = _body(_notification(user["user_id"]))
    for _ in range(6):
        broker.notify(body)
    wait_until(lambda: sum(c.stats["delivered"] + c.stats["duplicate"] for c in consumers) == 6, 10,
               what="six deliveries")
    assert sum(c.stats["delivered"] for c in consumers) == 1
    assert len(users.outbox(user["phone"])) == 1 and len(_emails(users, user["user_id"])) == 1


# The consumer as its own process, with a unit of work that kills the process right after its commit: the ack never
# happens, exactly as if the process died between the two.
DIES_AFTER_COMMIT = """
import dataclasses, functools, os, signal
from user_service.bootstrap import bootstrap
from user_service.entrypoints.notification_consumer import NotificationConsumer
from user_service.service_layer.unit_of_work import UserUnitOfWork
from user_service.settings import UserSettings

class DiesAfterCommit(UserUnitOfWork):
    def commit(self):
        super().commit()
        os.kill(os.getpid(), signal.SIGKILL)

container = bootstrap(UserSettings())
NotificationConsumer(dataclasses.replace(container, uow=functools.partial(DiesAfterCommit, container.engine))).run()
"""


def test_a_redelivery_after_a_crash_between_commit_and_ack_writes_nothing_more(
        users, broker, consumer_settings, run_consumer, tmp_path):
    user = users.new()
    broker.notify(_body(_notification(user["user_id"])))
    env = {"DATABASE_URL": consumer_settings.database_url, "AMQP_URL": consumer_settings.amqp_url,
           "ENVIRONMENT": "test"}
    from trcommon.settings import child_environment

    with open(tmp_path / "consumer.log", "wb") as out:
        crashing = subprocess.Popen([sys.executable, "-c", DIES_AFTER_COMMIT], env=child_environment(env),
                                    stdout=out, stderr=subprocess.STDOUT)
    try:
        crashing.wait(20)
    except subprocess.TimeoutExpired:
        crashing.kill()
        crashing.wait()
    assert crashing.returncode == -signal.SIGKILL, (tmp_path / "consumer.log").read_text()
    assert len(users.outbox(user["phone"])) == 1          # it committed the delivery, then died before its ack

    consumer = run_consumer()
    wait_until(lambda: consumer.stats["duplicate"] == 1, 10, what="the redelivery")
    assert consumer.stats["redelivered"] == 1 and consumer.stats["delivered"] == 0
    assert len(users.outbox(user["phone"])) == 1 and len(_emails(users, user["user_id"])) == 1
    consumer.stop()
    wait_until(lambda: not consumer.consuming.is_set(), 5)
    assert broker.ready_messages(QUEUE) == 0                      # acked this time


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"notification_id": "x"}',
    json.dumps({"notification_id": "n:1", "kind": "PARTY_STARTED", "user_id": str(uuid.uuid4()),
                "occurred_at": "2030-01-01T00:00:00Z", "data": {}}).encode(),
    json.dumps({"notification_id": "n:2", "kind": "ORDER_CONFIRMED", "user_id": "not-a-uuid",
                "occurred_at": "2030-01-01T00:00:00Z", "data": {}}).encode(),
    json.dumps({"notification_id": "n:\u0000", "kind": "ORDER_CONFIRMED", "user_id": str(uuid.uuid4()),
                "occurred_at": "2030-01-01T00:00:00Z", "data": {}}).encode(),
], ids=["not-json", "missing-fields", "unknown-kind", "bad-user-id", "nul"])
def test_an_unreadable_message_is_parked_and_later_messages_flow(users, broker, run_consumer, body):
    user = users.new()
    consumer = run_consumer()
    broker.notify(body)
    broker.notify(_body(_notification(user["user_id"])))
    wait_until(lambda: consumer.stats["delivered"] == 1, 10, what="the valid message after the bad one")
    assert consumer.stats["parked"] == 1
    assert broker.take_from(PARKING_QUEUE, body, 5), "the bad message is not in the parking queue"


def test_a_notification_for_an_unknown_user_is_parked_and_writes_nothing(users, broker, run_consumer):
    consumer = run_consumer()
    message = _notification(str(uuid.uuid4()))
    broker.notify(_body(message))
    wait_until(lambda: consumer.stats["unknown_user"] == 1, 10, what="the unknown user")
    assert broker.take_from(PARKING_QUEUE, _body(message), 5)
    assert users.sql("SELECT count(*) FROM notifications WHERE notification_id = :n",
                     {"n": message["notification_id"]})[0][0] == 0


class _Inbox:
    """An aiosmtpd handler keeping what it accepts; recipients ending in `refuse` get 550."""

    def __init__(self):
        self.messages = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and address.endswith(self.refuse):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_with_smtp_configured_the_sender_delivers_the_email_and_marks_it_sent(users, broker, run_consumer,
                                                                             smtp_server):
    controller, inbox = smtp_server
    user = users.new()
    consumer = run_consumer(smtp_host="127.0.0.1", smtp_port=controller.port, smtp_starttls=False,
                            smtp_from="TicketRemaster <tickets@example.com>")
    message = _notification(user["user_id"], event_name="Spring Gala")
    broker.notify(_body(message))
    # The sender sends every unsent e-mail of the outbox: the earlier tests' too.
    mine = lambda: [e for e in inbox.messages if e.rcpt_tos == [user["email"]]]  # noqa: E731
    wait_until(mine, 10, what="the e-mail at the SMTP server")
    [envelope] = mine()
    assert envelope.mail_from == "tickets@example.com"
    text = envelope.content.decode()
    assert f"Subject: TicketRemaster: Order {message['data']['order_id'][:8]} confirmed" in text
    assert "Spring Gala" in text
    wait_until(lambda: _emails(users, user["user_id"])[0][4] is not None, 5, what="sent_at")
    assert consumer.sender.stats["sent"] >= 1


def test_an_email_the_server_refuses_is_given_up_after_its_attempts_and_others_still_go(users, container,
                                                                                         smtp_server):
    from user_service.service_layer import services

    controller, inbox = smtp_server
    good, bad = users.new(), users.new()
    bad_email = f"nobody{uuid.uuid4().hex[:8]}@refused.invalid"
    users.sql("UPDATE users SET email = :e WHERE user_id = :u", {"e": bad_email, "u": bad["user_id"]})
    for user in (bad, good):
        with container.uow() as uow:
            uow.email_outbox.add(user["user_id"], users.sql("SELECT email FROM users WHERE user_id = :u",
                                                            {"u": user["user_id"]})[0][0], "s", "b")
            uow.commit()
    inbox.refuse = "@refused.invalid"
    settings = container.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": controller.port,
                                                     "smtp_starttls": False, "email_max_attempts": 2})
    smtp = bootstrap(settings, engine=container.engine)
    for _ in range(3):
        services.send_pending_emails(smtp, smtp.mailer, 1000)
    assert [good["email"]] in [e.rcpt_tos for e in inbox.messages]
    assert not any(bad_email in e.rcpt_tos for e in inbox.messages)
    [(attempts, sent_at, error)] = users.sql("SELECT attempts, sent_at, last_error FROM email_outbox "
                                             "WHERE user_id = :u", {"u": bad["user_id"]})
    assert (attempts, sent_at) == (2, None) and "550" in error


def test_an_unreachable_smtp_server_leaves_the_emails_unsent(users, container):
    from user_service.adapters.email import MailerUnavailable
    from user_service.service_layer import services

    user = users.new()
    with container.uow() as uow:
        uow.email_outbox.add(user["user_id"], user["email"], "s", "b")
        uow.commit()
    settings = container.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port(),
                                                     "smtp_starttls": False, "smtp_timeout_seconds": 2})
    smtp = bootstrap(settings, engine=container.engine)
    with pytest.raises(MailerUnavailable):
        services.send_pending_emails(smtp, smtp.mailer, 1000)
    assert users.sql("SELECT attempts, sent_at FROM email_outbox WHERE user_id = :u",
                     {"u": user["user_id"]}) == [(0, None)]


def test_the_notification_consumer_process_stops_cleanly_on_sigterm(consumer_settings, tmp_path):
    proc = ChildProcess(tmp_path / "notification-consumer.log", {
        "DATABASE_URL": consumer_settings.database_url, "AMQP_URL": consumer_settings.amqp_url,
        "ENVIRONMENT": "test", "LOG_LEVEL": "INFO", "STARTUP_WAIT_SECONDS": "10"},
        module="user_service.entrypoints.notification_consumer")
    proc.wait_for(lambda: any(e.get("message") == "consuming" for e in proc.json_lines()))
    assert proc.stop(signal.SIGTERM) == 0
    lines = proc.json_lines()
    messages = [line["message"] for line in lines]
    assert messages[-2:] == ["notification consumer stopped", "stopped"], messages
    assert all(line["service"] == "user-service" for line in lines)


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "offset=-1", "limit=1.5"])
def test_a_bad_notifications_query_is_400(client, users, query):
    user = users.new()
    resp = client.get(f"/internal/users/{user['user_id']}/notifications?{query}")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "nope"])
def test_notifications_of_an_unknown_user_are_404(client, user_id):
    resp = client.get(f"/internal/users/{user_id}/notifications")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "USER_NOT_FOUND"


def test_a_database_outage_keeps_the_notification_until_it_is_delivered(users, broker, consumer_settings,
                                                                         run_consumer):
    port = free_port()
    real = make_url(consumer_settings.database_url)
    proxy = TcpProxy(port, (real.host, real.port or 5432))       # not started: the database is "down"
    behind_proxy = real.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    user = users.new()
    consumer = run_consumer(database_url=behind_proxy)
    try:
        broker.notify(_body(_notification(user["user_id"])))
        wait_until(lambda: consumer.stats["database_retries"] >= 2, 10, what="retries while the database is down")
        assert users.outbox(user["phone"]) == []
        proxy.start()                                               # the database is back
        wait_until(lambda: consumer.stats["delivered"] == 1, 20, what="the delivery once the database is back")
        assert len(users.outbox(user["phone"])) == 1 and len(_emails(users, user["user_id"])) == 1
        # Kept and retried in place, never handed back to the broker (which would count toward the queue's
        # delivery-limit and end in the parking queue).
        assert consumer.stats["redelivered"] == 0 and consumer.stats["parked"] == 0
    finally:
        consumer.stop()
        proxy.stop()


def test_the_consumer_reconnects_after_the_broker_drops_its_connection(users, broker, amqp_url, run_consumer):
    import urllib.parse

    import requests
    from trcommon.testing import management_vhost
    from user_service.entrypoints.notification_consumer import CONNECTION_NAME

    consumer = run_consumer()
    mgmt = f"http://{urllib.parse.urlparse(amqp_url).hostname or '127.0.0.1'}:15672/api"
    vhost = management_vhost(amqp_url)

    def consumer_connections():
        try:
            listed = requests.get(f"{mgmt}/vhosts/{vhost}/connections", auth=("guest", "guest"), timeout=5).json()
        except requests.RequestException:
            pytest.skip("the RabbitMQ management API is not reachable")
        return [c["name"] for c in listed if c.get("client_properties", {}).get("connection_name") == CONNECTION_NAME]

    wait_until(lambda: len(consumer_connections()) == 1, 10, interval=0.2, what="the consumer's connection")
    for name in consumer_connections():
        requests.delete(f"{mgmt}/connections/{urllib.parse.quote(name, safe='')}", auth=("guest", "guest"),
                        headers={"X-Reason": "test: broker goes away"}, timeout=5).raise_for_status()
    wait_until(lambda: consumer.stats["connection_losses"] >= 1, 5, what="the lost connection")
    assert consumer.consuming.wait(10), "the consumer did not reattach to the queue"
    user = users.new()
    broker.notify(_body(_notification(user["user_id"])))
    wait_until(_delivered(users, user), 10, what="a delivery after reconnecting")
