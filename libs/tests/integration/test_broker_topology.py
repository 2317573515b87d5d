"""The broker topology applied from rabbitmq/definitions.json is what the broker reports."""
import requests

from trcommon.amqp import load_definitions
from trcommon.testing import management_vhost

MGMT = "http://127.0.0.1:15672/api"


def test_the_hold_queue_is_a_quorum_queue_that_never_drops_an_expiring_hold(amqp_url):
    q = requests.get(f"{MGMT}/queues/{management_vhost(amqp_url)}/seat.hold.queue", auth=("guest", "guest"), timeout=10).json()
    assert q["arguments"] == {"x-queue-type": "quorum", "x-message-ttl": 300000,
                              "x-dead-letter-exchange": "seat.hold.dlx", "x-dead-letter-routing-key": "seat.release",
                              "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    assert q["durable"] is True and q["type"] == "quorum"


def test_every_declared_queue_exchange_and_binding_exists_with_its_arguments(amqp_url):
    defs = load_definitions()
    vhost, auth = management_vhost(amqp_url), ("guest", "guest")
    for queue in defs["queues"]:
        found = requests.get(f"{MGMT}/queues/{vhost}/{queue['name']}", auth=auth, timeout=10).json()
        assert found["arguments"] == queue["arguments"], queue["name"]
    for ex in defs["exchanges"]:
        found = requests.get(f"{MGMT}/exchanges/{vhost}/{ex['name']}", auth=auth, timeout=10).json()
        assert found["type"] == ex["type"] and found["durable"] == ex["durable"], ex["name"]
    bindings = {(b["source"], b["destination"], b["routing_key"])
                for b in requests.get(f"{MGMT}/bindings/{vhost}", auth=auth, timeout=10).json()}
    for b in defs["bindings"]:
        assert (b["source"], b["destination"], b["routing_key"]) in bindings


def test_the_definitions_file_loads_the_broker_user_the_services_connect_as():
    defs = load_definitions()
    assert [u["name"] for u in defs["users"]] == ["ticketremaster"]
    assert {p["user"] for p in defs["permissions"]} == {"ticketremaster"}
