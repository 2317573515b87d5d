from pydantic import Field

from trcommon.settings import PG_SERVER, CommonSettings


class InventorySettings(CommonSettings):
    service_name: str = "inventory-service"
    database_url: str = f"{PG_SERVER}/seats_db"
    # host:port; 0.0.0.0 so the service is reachable inside a container network. Every call still needs the
    # internal credential.
    grpc_bind: str = "0.0.0.0:50051"
    grpc_max_workers: int = Field(32, ge=1)
    # One pooled connection per gRPC worker, so no call waits for the pool.
    db_pool_size: int = 32
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    max_holds_per_user: int = Field(8, ge=1)
    # The release consumer's sweeper: every interval it releases holds that lapsed more than grace ago (the
    # backstop for a hold whose timer message was lost; the message normally releases it first).
    hold_sweep_interval_seconds: float = Field(1.0, gt=0)
    hold_sweep_grace_seconds: float = Field(2.0, ge=0)
    hold_sweep_batch: int = Field(500, ge=1)
    release_prefetch: int = Field(50, ge=1, le=1000)
    # Once a timer message has arrived, wait this long for more before releasing them in one transaction.
    release_batch_window_seconds: float = Field(0.0, ge=0, le=1)
    # A release message that arrives before held_until (broker and database clocks disagree) is kept and retried
    # at held_until, for at most this long; beyond that it is acked and the sweeper ends the hold.
    release_early_wait_max_seconds: float = Field(30.0, ge=0)
