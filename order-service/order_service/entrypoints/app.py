"""HTTP entrypoint: serves the routes of trcontracts.orders, translating them to service-layer calls."""
from __future__ import annotations

import uuid

from flask import Flask

from trcommon.web import database_service_app, internal_blueprint, serve
from trcontracts import orders

from ..bootstrap import Container, bootstrap
from ..domain.model import CreateOrder, CreateTransfer, Order, Transfer
from ..service_layer import services
from ..settings import OrderSettings


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _reply(order: Order) -> orders.Order:
    return orders.Order.model_validate(order, from_attributes=True)


def _replies(found: list[Order]) -> orders.OrderList:
    return orders.OrderList(orders=[_reply(o) for o in found])


def _transfer_reply(transfer: Transfer) -> orders.Transfer:
    return orders.Transfer.model_validate(transfer, from_attributes=True)


def _transfer_replies(found: list[Transfer]) -> orders.TransferList:
    return orders.TransferList(transfers=[_transfer_reply(t) for t in found])


def create_app(settings: OrderSettings | None = None, container: Container | None = None) -> Flask:
    app, settings, c = database_service_app(OrderSettings, bootstrap, settings, container)

    api = internal_blueprint("orders", __name__, settings)

    @serve(api, orders.CREATE_ORDER)
    def create_order(body: orders.CreateOrderBody):
        order, created = services.create_order(c.uow, CreateOrder(
            order_id=str(body.order_id), user_id=str(body.user_id), seat_ids=tuple(str(i) for i in body.all_seat_ids),
            event_id=str(body.event_id), amount=body.amount, held_until=body.held_until))
        return _reply(order), (orders.CREATE_ORDER.status if created else 200)

    @serve(api, orders.LIST_ORDERS)
    def list_orders(query: orders.OrderQuery):
        return _replies(services.list_orders(c.uow, _id(query.user_id), _id(query.seat_id), query.status,
                                             query.limit, query.offset, _id(query.event_id)))

    @serve(api, orders.STALE_ORDERS)
    @api.polled
    def stale_orders(query: orders.StaleQuery):
        return _replies(services.stale_orders(c.uow, query.grace_seconds, query.limit))

    @serve(api, orders.GET_ORDER)
    def get_order(order_id: str):
        return _reply(services.get_order(c.uow, order_id))

    @serve(api, orders.BEGIN_PAYMENT)
    def begin_payment(order_id: str, body: orders.BeginPaymentBody):
        return _reply(services.begin_payment(c.uow, order_id, str(body.user_id)))

    @serve(api, orders.BEGIN_REFUND)
    def begin_refund(order_id: str):
        return _reply(services.begin_refund(c.uow, order_id))

    @serve(api, orders.TRANSITION)
    def transition(order_id: str, body: orders.TransitionBody):
        return _reply(services.transition_order(c.uow, order_id, body.to, body.reason))

    @serve(api, orders.CREATE_TRANSFER)
    def create_transfer(body: orders.CreateTransferBody):
        transfer, created = services.create_transfer(c.uow, CreateTransfer(
            transfer_id=str(body.transfer_id), seat_id=str(body.seat_id), event_id=str(body.event_id),
            seller_user_id=str(body.seller_user_id), buyer_user_id=str(body.buyer_user_id), amount=body.amount,
            face_value=body.face_value, expires_at=body.expires_at))
        return _transfer_reply(transfer), (orders.CREATE_TRANSFER.status if created else 200)

    @serve(api, orders.LIST_TRANSFERS)
    def list_transfers(query: orders.TransferQuery):
        return _transfer_replies(services.list_transfers(c.uow, _id(query.user_id), _id(query.seat_id),
                                                         query.status, query.limit, query.offset,
                                                         _id(query.event_id)))

    @serve(api, orders.STALE_TRANSFERS)
    @api.polled
    def stale_transfers(query: orders.StaleQuery):
        return _transfer_replies(services.stale_transfers(c.uow, query.grace_seconds, query.limit))

    @serve(api, orders.GET_TRANSFER)
    def get_transfer(transfer_id: str):
        return _transfer_reply(services.get_transfer(c.uow, transfer_id))

    @serve(api, orders.BEGIN_CONFIRM)
    def begin_confirm(transfer_id: str, body: orders.BeginConfirmBody):
        return _transfer_reply(services.begin_confirm(c.uow, transfer_id, str(body.user_id)))

    @serve(api, orders.TRANSFER_TRANSITION)
    def transfer_transition(transfer_id: str, body: orders.TransferTransitionBody):
        return _transfer_reply(services.transition_transfer(c.uow, transfer_id, body.to, body.reason,
                                                            body.release_at, body.resolution, body.expected_step))

    @serve(api, orders.BEGIN_REVERSE)
    def begin_reverse(transfer_id: str):
        return _transfer_reply(services.begin_reverse(c.uow, transfer_id))

    @serve(api, orders.MARK_RELEASED)
    def mark_released(transfer_id: str):
        return _transfer_reply(services.mark_released(c.uow, transfer_id))

    @serve(api, orders.EVENT_SALES)
    def event_sales(event_id: str):
        return orders.EventSales.model_validate(services.event_sales(c.uow, event_id), from_attributes=True)

    @serve(api, orders.EVENT_CANCELLED_NOTICES)
    def cancellation_notices(event_id: str, body: orders.CancellationNoticesBody):
        return orders.CancellationNotices(
            notified=services.notify_event_cancelled(c.uow, event_id, body.reason, body.event_name))

    app.register_blueprint(api)
    return app
