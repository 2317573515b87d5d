"""Composition root of the orchestrator: one keep-alive HTTP session per service, one gRPC channel, one
confirmed publisher; built once per process and shared by every request thread."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from trcommon.amqp import ConfirmedPublisher
from trcommon.auth import TokenService
from trcommon.http_client import ServiceClient
from trcommon.saga import SagaRunner

from .adapters.inventory import InventoryClient
from .adapters.qr import QrCodec
from .adapters.services import EventService, OrderService, UserService
from .settings import OrchestratorSettings


@dataclass
class Container:
    settings: OrchestratorSettings
    tokens: TokenService
    users: UserService
    orders: OrderService
    events: EventService
    inventory: InventoryClient
    holds: ConfirmedPublisher
    sagas: SagaRunner
    qr: QrCodec
    # /verify asks inventory-, order- and event-service at once from these threads.
    fanout: ThreadPoolExecutor

    def close(self) -> None:
        self.fanout.shutdown(wait=False)
        for client in (self.users.http, self.orders.http, self.events.http):
            client.close()
        self.inventory.close()
        self.holds.close()


def bootstrap(settings: OrchestratorSettings) -> Container:
    def http(name: str, url: str) -> ServiceClient:
        return ServiceClient(name, url, settings.internal_service_token, settings.internal_timeout_seconds)

    from .service_layer.sagas import SAGAS     # the sagas' steps call this container's clients

    try:
        runner = SagaRunner(SAGAS, settings.failpoint_set)
    except ValueError as exc:
        raise SystemExit(f"configuration error: FAILPOINTS: {exc}") from None
    try:
        qr = QrCodec(settings.qr_signing_key, settings.qr_key_id, settings.qr_public_keys)
    except ValueError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    return Container(
        settings=settings,
        tokens=TokenService(settings.jwt_secret, settings.jwt_issuer, settings.access_token_ttl_seconds,
                            settings.refresh_token_ttl_seconds),
        users=UserService(http("user-service", settings.user_service_url)),
        orders=OrderService(http("order-service", settings.order_service_url)),
        events=EventService(http("event-service", settings.event_service_url), settings.event_cache_seconds),
        inventory=InventoryClient(settings.inventory_grpc_target, settings.internal_service_token,
                                  settings.internal_timeout_seconds, settings.seat_map_cache_seconds),
        holds=ConfirmedPublisher(settings.amqp_url, "seat.hold", "seat.hold", "orchestrator-holds"),
        sagas=runner,
        qr=qr,
        fanout=ThreadPoolExecutor(settings.verify_pool_size, thread_name_prefix="verify"),
    )
