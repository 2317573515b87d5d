from pydantic import Field

from trcommon.settings import DEV_AMQP_URL, PG_SERVER, CommonSettings


class OrderSettings(CommonSettings):
    service_name: str = "order-service"
    database_url: str = f"{PG_SERVER}/orders_db"
    port: int = 8002
    # The outbox relay (python -m order_service.entrypoints.outbox_relay).
    amqp_url: str = DEV_AMQP_URL
    outbox_batch_size: int = Field(100, ge=1, le=1000)
    # How long the relay sleeps without a NOTIFY before it looks anyway (a lost NOTIFY is found by then).
    outbox_poll_seconds: float = Field(1.0, gt=0, le=60)
    # Once woken by a commit, how long it waits for the next commits' rows to join the same batch.
    outbox_gather_seconds: float = Field(0.5, ge=0, le=5)
    # Published rows are kept this long (for inspection and so that a repeated write is still recognised), then
    # pruned by the relay.
    outbox_retention_days: float = Field(7.0, gt=0)
