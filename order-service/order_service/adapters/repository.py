from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from trcommon.db import UNIQUE_VIOLATION, Prepared, sqlstate

from ..domain.model import (ORDER_NOTICES, ORDER_TRANSITIONS, TRANSFER_NOTICES, CreateOrder, CreateTransfer, Order,
                            OrderStatus, PaymentState, SeatAlreadyConfirmed, Transfer, TransferStatus, TransferStep)
from . import notices
from .tables import orders, transfers

ONE_CONFIRMED_PER_SEAT = "uq_orders_one_confirmed_per_seat"


# Single-statement moves of the order state machine, built once (then found in SQLAlchemy's compiled cache): each is
# a conditional UPDATE whose WHERE is the rule, so it either makes the move or matches nothing; the service then
# reads the order to say why (the same answers as the locked path).
_ADD = Prepared(insert(orders)
        .values(order_id=sa.bindparam("p_order_id"), user_id=sa.bindparam("p_user_id"),
                seat_id=sa.bindparam("p_seat_id"), event_id=sa.bindparam("p_event_id"),
                seat_ids=sa.cast(sa.bindparam("p_seat_ids"), ARRAY(UUID(as_uuid=False))),
                amount=sa.bindparam("p_amount"), held_until=sa.bindparam("p_held_until"),
                status=OrderStatus.PENDING.value, payment_state=PaymentState.NONE.value)
        .on_conflict_do_nothing(index_elements=[orders.c.order_id])
        .returning(*orders.c))
_GET = Prepared(sa.select(orders).where(orders.c.order_id == sa.bindparam("p_order_id")))
_START_CHARGING = Prepared(
    sa.update(orders)
    .where(orders.c.order_id == sa.bindparam("p_order_id"), orders.c.user_id == sa.bindparam("p_user_id"),
           orders.c.status == OrderStatus.PENDING.value, orders.c.payment_state == PaymentState.NONE.value,
           orders.c.held_until > sa.func.now())
    .values(payment_state=PaymentState.CHARGING.value, updated_at=sa.func.now())
    .returning(*orders.c))


_READ = Prepared(sa.select(orders, sa.func.now().label("db_now"))
                 .where(orders.c.order_id == sa.bindparam("p_order_id")))


def _move_statement(to: OrderStatus) -> sa.Update | sa.Select:
    sources = [s.value for s, targets in ORDER_TRANSITIONS.items() if to in targets]
    # `=` joined by OR rather than IN: a Prepared statement has no expanding parameters.
    where = [orders.c.order_id == sa.bindparam("p_order_id"), sa.or_(*(orders.c.status == s for s in sources))]
    values: dict = {"status": to.value, "updated_at": sa.func.now()}
    reason = sa.bindparam("p_reason", type_=sa.Text)
    if to == OrderStatus.EXPIRED:
        # Only an unpaid order whose hold has ended (Order.transition's guards).
        where += [orders.c.payment_state == PaymentState.NONE.value, orders.c.held_until <= sa.func.now()]
        values["failure_reason"] = sa.func.coalesce(sa.func.nullif(reason, ""), "hold expired")
    elif to == OrderStatus.CONFIRMED:
        values["confirmed_at"] = sa.func.coalesce(orders.c.confirmed_at, sa.func.now())
    elif to == OrderStatus.CANCELLED:
        # Only while no charge has begun (Order.transition's guard).
        where.append(orders.c.payment_state == PaymentState.NONE.value)
        values["failure_reason"] = sa.func.coalesce(reason, orders.c.failure_reason)
    else:
        values["failure_reason"] = sa.func.coalesce(reason, orders.c.failure_reason)
    move = sa.update(orders).where(*where).values(values).returning(*orders.c)
    if to in ORDER_NOTICES:
        # The fan's notification is written by the same statement (still one round trip on the hot path, /pay).
        return notices.with_order_notice(move, to)
    return move


_MOVES = {to: Prepared(_move_statement(to)) for to in OrderStatus
          if any(to in targets for targets in ORDER_TRANSITIONS.values())}
_ORDER_NOTICES = notices.order_notices_of(sa.bindparam("p_order_id"))
_EVENT_CANCELLED = notices.event_cancelled_notices(
    sa.bindparam("p_event_id", type_=UUID(as_uuid=False)), sa.bindparam("p_reason", type_=sa.Text),
    sa.bindparam("p_event_name", type_=sa.Text))
_EVENT_CANCELLED_COUNT = notices.event_cancelled_count(sa.bindparam("p_event_id", type_=UUID(as_uuid=False)))
_TRANSFER_NOTICES = notices.transfer_notices_of(sa.bindparam("p_transfer_id"))


def _order(row: Row) -> Order:
    m = row._mapping
    return Order(order_id=m["order_id"], user_id=m["user_id"], seat_id=m["seat_id"],
                 seat_ids=tuple(str(i) for i in m["seat_ids"]), event_id=m["event_id"],
                 amount=m["amount"], status=OrderStatus(m["status"]), payment_state=PaymentState(m["payment_state"]),
                 held_until=m["held_until"], failure_reason=m["failure_reason"], confirmed_at=m["confirmed_at"],
                 created_at=m["created_at"], updated_at=m["updated_at"])


def _constraint_name(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _raise_seat_already_confirmed(exc: IntegrityError, seat: str) -> None:
    if sqlstate(exc) == UNIQUE_VIOLATION and _constraint_name(exc) == ONE_CONFIRMED_PER_SEAT:
        raise SeatAlreadyConfirmed(f"{seat} already has a confirmed order") from None


class OrderRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, cmd: CreateOrder) -> Order | None:
        """Insert a PENDING order; None when an order with this id already exists (it is left untouched)."""
        row = _ADD.first(self._conn, {"p_order_id": cmd.order_id, "p_user_id": cmd.user_id,
                                      "p_seat_id": cmd.seat_id, "p_seat_ids": list(cmd.seat_ids),
                                      "p_event_id": cmd.event_id,
                                      "p_amount": cmd.amount, "p_held_until": cmd.held_until})
        return _order(row) if row else None

    def get(self, order_id: str) -> Order | None:
        row = _GET.first(self._conn, {"p_order_id": order_id})
        return _order(row) if row else None

    def read(self, order_id: str) -> tuple[Order, datetime] | None:
        """The order with the database clock, without a lock; None if missing."""
        row = _READ.first(self._conn, {"p_order_id": order_id})
        return (_order(row), row.db_now) if row else None

    def lock(self, order_id: str) -> tuple[Order, datetime] | None:
        """The order, row-locked until the end of the transaction, with the database clock; None if missing.

        Waits for a concurrent writer of the same order (they are short), so that a payment start and an
        expiry of one order are decided one after the other, each seeing the other's result.
        """
        row = self._conn.execute(
            sa.select(orders, sa.func.now().label("db_now")).where(orders.c.order_id == order_id)
            .with_for_update()).first()
        return (_order(row), row.db_now) if row else None

    def start_charging(self, order_id: str, user_id: str) -> Order | None:
        """The user's live PENDING order with no charge started → CHARGING, in one statement; None otherwise."""
        row = _START_CHARGING.first(self._conn, {"p_order_id": order_id, "p_user_id": user_id})
        return _order(row) if row else None

    def move(self, order_id: str, to: OrderStatus, reason: str | None) -> Order | None:
        """Move the order to `to` in one statement if the state machine allows it from where it is; None when it
        does not (or there is no such order, or no move leads to `to`)."""
        stmt = _MOVES.get(to)
        if stmt is None:
            return None
        try:
            row = stmt.first(self._conn, {"p_order_id": order_id, "p_reason": reason})
        except IntegrityError as exc:
            _raise_seat_already_confirmed(exc, f"the seat of order {order_id}")
            raise
        return _order(row) if row else None

    def save(self, order: Order) -> Order:
        """Write the mutable fields of a locked order and return it as stored."""
        try:
            row = self._conn.execute(
                sa.update(orders).where(orders.c.order_id == order.order_id)
                .values(status=order.status.value, payment_state=order.payment_state.value,
                        failure_reason=order.failure_reason, confirmed_at=order.confirmed_at,
                        updated_at=sa.func.now())
                .returning(*orders.c)).one()
        except IntegrityError as exc:
            _raise_seat_already_confirmed(exc, f"seat {order.seat_id}")
            raise
        if order.status in ORDER_NOTICES:
            self._conn.execute(_ORDER_NOTICES, {"p_order_id": order.order_id})
        return _order(row)

    def list(self, user_id: str | None, seat_id: str | None, statuses: list[OrderStatus] | None, limit: int,
             offset: int, event_id: str | None = None) -> list[Order]:
        """Newest first; oldest first when listing an event's orders."""
        query = sa.select(orders)
        if user_id is not None:
            query = query.where(orders.c.user_id == user_id)
        if seat_id is not None:
            query = query.where(orders.c.seat_ids.contains(sa.cast(postgresql.array([seat_id]),
                                                                   ARRAY(UUID(as_uuid=False)))))
        if event_id is not None:
            query = query.where(orders.c.event_id == event_id)
        if statuses:
            query = query.where(orders.c.status.in_([s.value for s in statuses]))
        if event_id is not None:
            query = query.order_by(orders.c.created_at, orders.c.order_id)
        else:
            query = query.order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
        return [_order(row) for row in self._conn.execute(query.limit(limit).offset(offset))]

    def sales(self, event_id: str) -> dict[str, tuple[int, int, int]]:
        """The event's orders by status: {status: (orders, sum of amounts, seats)}."""
        rows = self._conn.execute(
            sa.select(orders.c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(orders.c.amount), 0),
                      sa.func.coalesce(sa.func.sum(sa.func.cardinality(orders.c.seat_ids)), 0))
            .where(orders.c.event_id == event_id).group_by(orders.c.status))
        return {status: (int(n), int(amount), int(seats)) for status, n, amount, seats in rows}

    def notify_event_cancelled(self, event_id: str, reason: str, event_name: str | None) -> int:
        """Write an EVENT_CANCELLED notice for each fan of the event who has none yet; how many the event has."""
        params = {"p_event_id": event_id, "p_reason": reason, "p_event_name": event_name}
        self._conn.execute(_EVENT_CANCELLED, params)
        return self._conn.execute(_EVENT_CANCELLED_COUNT, {"p_event_id": event_id}).scalar_one()

    def stale(self, grace: timedelta, limit: int) -> list[Order]:
        """PENDING orders that need the recovery pass (by the database clock), oldest hold first: unpaid ones
        as soon as their hold has ended; charging ones once their hold ended, or they last moved, more than
        `grace` ago (a charge under way must not be overtaken)."""
        cutoff = sa.func.now() - sa.literal(grace, sa.Interval)
        pending = sa.and_(orders.c.status == OrderStatus.PENDING.value,
                          sa.or_(sa.and_(orders.c.payment_state == PaymentState.NONE.value,
                                         orders.c.held_until < sa.func.now()),
                                 sa.and_(orders.c.payment_state == PaymentState.CHARGING.value,
                                         sa.or_(orders.c.held_until < cutoff, orders.c.updated_at < cutoff))))
        # A refund begun and quiet for `grace`: its request was lost (one under way must not be overtaken).
        refunding = sa.and_(orders.c.status == OrderStatus.REFUNDING.value, orders.c.updated_at < cutoff)
        query = (sa.select(orders).where(sa.or_(pending, refunding))
                 .order_by(orders.c.held_until, orders.c.order_id).limit(limit))
        return [_order(row) for row in self._conn.execute(query)]

    def count(self) -> int:
        return self._conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()


def _transfer(row: Row) -> Transfer:
    m = row._mapping
    return Transfer(transfer_id=m["transfer_id"], seat_id=m["seat_id"], event_id=m["event_id"],
                    seller_user_id=m["seller_user_id"], buyer_user_id=m["buyer_user_id"], amount=m["amount"],
                    face_value=m["face_value"], status=TransferStatus(m["status"]), step=TransferStep(m["step"]),
                    expires_at=m["expires_at"], dispute_reason=m["dispute_reason"], resolution=m["resolution"],
                    release_at=m["release_at"], released_at=m["released_at"], completed_at=m["completed_at"],
                    failure_reason=m["failure_reason"], created_at=m["created_at"], updated_at=m["updated_at"])


class TransferRepository:
    def __init__(self, conn: Connection):
        self._conn = conn

    def add(self, cmd: CreateTransfer) -> Transfer | None:
        """Insert a PENDING_OTP transfer at step INITIATED; None, leaving everything untouched, when a transfer
        with this id already exists or another PENDING_OTP transfer offers the seat.

        Every unique index arbitrates (no conflict target): with only the id's, two creates of one transfer racing
        each other could trip the seat's index instead and fail rather than find each other."""
        row = self._conn.execute(
            insert(transfers).values(
                transfer_id=cmd.transfer_id, seat_id=cmd.seat_id, event_id=cmd.event_id,
                seller_user_id=cmd.seller_user_id, buyer_user_id=cmd.buyer_user_id, amount=cmd.amount,
                face_value=cmd.face_value, expires_at=cmd.expires_at, status=TransferStatus.PENDING_OTP.value,
                step=TransferStep.INITIATED.value)
            .on_conflict_do_nothing()
            .returning(*transfers.c)).first()
        if row is None:
            return None
        self._conn.execute(_TRANSFER_NOTICES, {"p_transfer_id": cmd.transfer_id})
        return _transfer(row)

    def get(self, transfer_id: str) -> Transfer | None:
        row = self._conn.execute(sa.select(transfers).where(transfers.c.transfer_id == transfer_id)).first()
        return _transfer(row) if row else None

    def lock(self, transfer_id: str) -> tuple[Transfer, datetime] | None:
        """The transfer, row-locked until the end of the transaction, with the database clock; None if missing.

        Waits for a concurrent writer of the same transfer (they are short), so that a confirm, a cancel, an
        expiry, a dispute and a release of one transfer are decided one after the other, each seeing the result
        of the one before."""
        row = self._conn.execute(
            sa.select(transfers, sa.func.now().label("db_now")).where(transfers.c.transfer_id == transfer_id)
            .with_for_update()).first()
        return (_transfer(row), row.db_now) if row else None

    def save(self, transfer: Transfer) -> Transfer:
        """Write the mutable fields of a locked transfer and return it as stored."""
        row = self._conn.execute(
            sa.update(transfers).where(transfers.c.transfer_id == transfer.transfer_id)
            .values(status=transfer.status.value, step=transfer.step.value, dispute_reason=transfer.dispute_reason,
                    resolution=transfer.resolution, release_at=transfer.release_at,
                    released_at=transfer.released_at, completed_at=transfer.completed_at,
                    failure_reason=transfer.failure_reason, updated_at=sa.func.now())
            .returning(*transfers.c)).one()
        if transfer.status in TRANSFER_NOTICES:
            self._conn.execute(_TRANSFER_NOTICES, {"p_transfer_id": transfer.transfer_id})
        return _transfer(row)

    def list(self, user_id: str | None, seat_id: str | None, statuses: list[TransferStatus] | None, limit: int,
             offset: int, event_id: str | None = None) -> list[Transfer]:
        """Newest first; oldest first when listing an event's transfers."""
        query = sa.select(transfers)
        if user_id is not None:
            query = query.where(sa.or_(transfers.c.seller_user_id == user_id, transfers.c.buyer_user_id == user_id))
        if seat_id is not None:
            query = query.where(transfers.c.seat_id == seat_id)
        if event_id is not None:
            query = query.where(transfers.c.event_id == event_id)
        if statuses:
            query = query.where(transfers.c.status.in_([s.value for s in statuses]))
        if event_id is not None:
            query = query.order_by(transfers.c.created_at, transfers.c.transfer_id)
        else:
            query = query.order_by(transfers.c.created_at.desc(), transfers.c.transfer_id.desc())
        return [_transfer(row) for row in self._conn.execute(query.limit(limit).offset(offset))]

    def counts(self, event_id: str) -> dict[str, int]:
        """The event's transfers by status."""
        rows = self._conn.execute(sa.select(transfers.c.status, sa.func.count())
                                  .where(transfers.c.event_id == event_id).group_by(transfers.c.status))
        return {status: int(n) for status, n in rows}

    def stale(self, grace: timedelta, limit: int) -> list[Transfer]:
        """The transfers the recovery pass must look at (by the database clock), oldest first by the moment each
        became stale: lapsed ones nobody began confirming; confirms and reversals quiet for more than `grace` (one
        under way must not be overtaken); completed ones whose proceeds are due.

        One query per kind, each served by its partial index, so the every-second poll stays cheap however many
        transfers have ended."""
        t = transfers.c
        now = sa.func.now()
        cutoff = now - sa.literal(grace, sa.Interval)
        pending, disputed = TransferStatus.PENDING_OTP.value, TransferStatus.DISPUTED.value
        kinds = [
            (t.expires_at, sa.and_(t.status == pending, t.step == TransferStep.INITIATED.value, t.expires_at <= now)),
            (t.updated_at, sa.and_(t.status == pending, t.step == TransferStep.CONFIRMING.value,
                                   t.updated_at < cutoff)),
            (t.updated_at, sa.and_(t.status == disputed, t.step == TransferStep.REVERSING.value,
                                   t.updated_at < cutoff)),
            (t.release_at, sa.and_(t.status == TransferStatus.COMPLETED.value, t.released_at.is_(None),
                                   t.release_at <= now)),
        ]
        parts = [sa.select(transfers, since.label("stale_since")).where(where).order_by(since).limit(limit)
                 for since, where in kinds]
        found = sa.union_all(*parts).subquery()
        query = sa.select(found).order_by(found.c.stale_since, found.c.transfer_id).limit(limit)
        return [_transfer(row) for row in self._conn.execute(query)]
