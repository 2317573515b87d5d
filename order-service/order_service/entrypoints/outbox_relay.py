"""The outbox relay of orders_db: publishes the notifications order-service's transactions wrote (trcommon.outbox).
Run with `python -m order_service.entrypoints.outbox_relay`; several may run at once (each row is claimed by one).
SIGTERM stops it between batches."""
from __future__ import annotations

from datetime import timedelta

from trcommon.outbox import OutboxRelay
from trcommon.process import running

from ..bootstrap import bootstrap
from ..settings import OrderSettings


def main() -> None:
    with running(OrderSettings, bootstrap, log_name="order-outbox-relay", database=True, broker=True,
                 background=True) as p:
        s = p.settings
        OutboxRelay(p.container.engine, s.amqp_url, name="order-outbox-relay", batch_size=s.outbox_batch_size,
                    poll_seconds=s.outbox_poll_seconds, gather_seconds=s.outbox_gather_seconds,
                    retention=timedelta(days=s.outbox_retention_days)).run(p.stop)


if __name__ == "__main__":
    main()
