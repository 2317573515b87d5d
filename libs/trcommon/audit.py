"""`make audit`: check the invariants of docs/design.md across the four databases; exit 1 on any violation.

It reads each service's database directly (an operator tool, read-only) and reports every violation it finds:
  1. a seat is never sold twice and never has two live holds
  2. every SOLD/CHECKED_IN seat has exactly one CONFIRMED order (or a COMPLETED transfer to its owner), whose
     buyer was charged exactly once, the order's amount (the sum of its seats' prices); every seat of a CONFIRMED
     order is sold (no partial order); no charge exists without a seat (every debit is for a confirmed order or
     has its refund); a REFUNDED order has its debit and exactly one refund of its amount, and none of its seats is
     still sold under it (a refund under way, REFUNDING, may not have got there yet)
  3. credits are conserved: each user's spendable balance (credit_balance) and pending credits each equal the sum
     of the ledger rows of that account, and neither is negative
  4. every hold ends: no HELD seat and no PENDING order more than TOLERANCE past held_until
  5. a ticket is checked in at most once
  7. every transfer moved money once each way as its state says (debit and pending credit when completed, both
     undone when reversed or called off, the release once when released), the seat's owner is the buyer of its
     last completed transfer (the seller again if it was reversed), and every change of owner bumped the
     ticket_version, and every check-in was by a code of the version its ticket had at that moment (no code
     issued before a transfer admitted anyone)
  8. a cancelled event is closed: none of its seats on sale or HELD, no transfer of it waiting
     for codes past its expiry, and every CONFIRMED order of it kept a ticket that could not be taken back (checked in or
     transferred away: named in the cancellation's answer); none is still CANCELLING TOLERANCE after its last change
  (6, convergence after a crash, is what the e2e crash tests check by running this audit at their end.)
Usage: python -m trcommon.audit [--tolerance-seconds N]
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from trcontracts.inventory import SeatStatus
from trcontracts.orders import OrderStatus, PaymentState, TransferStatus
from trcontracts.users import Account

# Seats that are paid tickets.
SOLD = frozenset({SeatStatus.SOLD, SeatStatus.CHECKED_IN})

@dataclass(frozen=True)
class Violation:
    invariant: int
    message: str

    def __str__(self) -> str:
        return f"VIOLATION (invariant {self.invariant}): {self.message}"


def _rows(engine: sa.Engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def audit(urls: dict[str, str], tolerance_seconds: float = 30.0) -> tuple[list[Violation], dict]:
    engines = {name: sa.create_engine(url, poolclass=sa.pool.NullPool) for name, url in urls.items()}
    try:
        return _audit(engines, tolerance_seconds)
    finally:
        for e in engines.values():
            e.dispose()


def _audit(engines: dict[str, sa.Engine], tol: float) -> tuple[list[Violation], dict]:
    inv, orders_db, users_db = engines["inventory-service"], engines["order-service"], engines["user-service"]
    v: list[Violation] = []
    seats = _rows(inv, "SELECT seat_id::text, event_id::text, status, on_sale, owner_user_id::text, hold_id::text, "
                       "held_until, price, "
                       "held_until < now() - make_interval(secs => :t) AS overdue FROM seats", t=tol)
    orders = _rows(orders_db, "SELECT order_id::text, user_id::text, event_id::text, seat_ids::text[], amount, status, "
                              "payment_state, "
                              "held_until < now() - make_interval(secs => :t) AS overdue, "
                              "updated_at < now() - make_interval(secs => :t) AS quiet FROM orders", t=tol)
    transfers = _rows(orders_db, "SELECT transfer_id::text, seat_id::text, seller_user_id::text, "
                                 "buyer_user_id::text, amount, status, step, completed_at, released_at, "
                                 "expires_at < now() - make_interval(secs => :t) AS overdue FROM transfers", t=tol)
    changes = _rows(inv, "SELECT change_key, seat_id::text, to_user_id::text, changed_at FROM ownership_changes")
    versions = {r["seat_id"]: r["ticket_version"] for r in _rows(inv, "SELECT seat_id::text, ticket_version FROM seats")}
    ledger = _rows(users_db, "SELECT user_id::text, amount, reference, account FROM credit_ledger")
    users = _rows(users_db, "SELECT user_id::text, credit_balance, pending_credits FROM users")
    checkins = _rows(inv, "SELECT seat_id, count(*) AS n FROM entry_logs WHERE result = 'CHECKED_IN' "
                          "GROUP BY seat_id HAVING count(*) > 1")
    # Each check-in with the ticket_version its seat had at that moment (1 + the owner changes before it).
    admitted = _rows(inv, "SELECT e.id, e.seat_id, e.ticket_version AS code_version, e.scanned_at, "
                          "1 + count(c.change_key) AS version_then FROM entry_logs e "
                          "LEFT JOIN ownership_changes c ON c.seat_id::text = e.seat_id AND c.changed_at <= e.scanned_at "
                          "WHERE e.result = 'CHECKED_IN' GROUP BY e.id")

    by_order = {o["order_id"]: o for o in orders}
    confirmed_by_seat: dict[str, list[dict]] = defaultdict(list)
    for o in orders:
        if o["status"] == OrderStatus.CONFIRMED:
            for seat_id in o["seat_ids"]:
                confirmed_by_seat[seat_id].append(o)
    # Seats that changed hands by transfer: their owner is checked against the transfers (invariant 7).
    transferred_seats = {t["seat_id"] for t in transfers if t["status"] in MOVED}
    refs = Counter(e["reference"] for e in ledger)
    charged = {e["reference"]: -e["amount"] for e in ledger}

    # 1. never sold twice (seat_id is the primary key of seats, so one row = at most one live hold)
    for seat_id, confirmed in confirmed_by_seat.items():
        if len(confirmed) > 1:
            v.append(Violation(1, f"seat {seat_id} has {len(confirmed)} CONFIRMED orders"))

    # 2. sold seats are paid exactly once, and every charge has a seat
    for s in seats:
        if s["status"] in SOLD:
            confirmed = confirmed_by_seat.get(s["seat_id"], [])
            refunding = by_order.get(s["hold_id"])
            if not confirmed and refunding and refunding["status"] == OrderStatus.REFUNDING:
                continue        # its refund has not taken it back yet
            if len(confirmed) != 1:
                v.append(Violation(2, f"seat {s['seat_id']} is {s['status']} with {len(confirmed)} CONFIRMED orders"))
                continue
            order = confirmed[0]
            if order["user_id"] != s["owner_user_id"] and s["seat_id"] not in transferred_seats:
                v.append(Violation(2, f"seat {s['seat_id']} is owned by {s['owner_user_id']} but was bought by "
                                      f"{order['user_id']} with no completed transfer"))
    seat_by_id = {s["seat_id"]: s for s in seats}
    for o in orders:
        debits = refs.get(f"order:{o['order_id']}:debit", 0)
        refunds = refs.get(f"order:{o['order_id']}:refund", 0)
        if o["status"] == OrderStatus.CONFIRMED:
            if debits != 1 or refunds:
                v.append(Violation(2, f"confirmed order {o['order_id']} has {debits} debits and {refunds} refunds"))
            elif (paid := charged[f"order:{o['order_id']}:debit"]) != o["amount"]:
                v.append(Violation(2, f"confirmed order {o['order_id']} of {o['amount']} credits was charged {paid}"))
            order_seats = [seat_by_id.get(seat_id) for seat_id in o["seat_ids"]]
            for seat_id, seat in zip(o["seat_ids"], order_seats):
                if seat is None or seat["status"] not in SOLD:
                    v.append(Violation(2, f"confirmed order {o['order_id']} but seat {seat_id} is "
                                          f"{seat['status'] if seat else 'missing'}"))
            if all(order_seats) and o["amount"] != sum(seat["price"] for seat in order_seats):
                v.append(Violation(2, f"confirmed order {o['order_id']} costs {o['amount']}, its "
                                      f"{len(order_seats)} seats {sum(seat['price'] for seat in order_seats)}"))
        elif o["status"] == OrderStatus.REFUNDED:
            if debits != 1 or refunds != 1:
                v.append(Violation(2, f"refunded order {o['order_id']} has {debits} debits and {refunds} refunds"))
            elif (back := -charged[f"order:{o['order_id']}:refund"]) != o["amount"]:
                v.append(Violation(2, f"refunded order {o['order_id']} of {o['amount']} credits was refunded {back}"))
            for seat_id in o["seat_ids"]:
                seat = seat_by_id.get(seat_id)
                if seat is not None and seat["status"] in SOLD and seat["hold_id"] == o["order_id"]:
                    v.append(Violation(2, f"refunded order {o['order_id']} but seat {seat_id} is still "
                                          f"{seat['status']} under it"))
        elif o["status"] == OrderStatus.REFUNDING:
            if o["quiet"]:
                v.append(Violation(2, f"order {o['order_id']} is still REFUNDING {tol:.0f}s after its last change"))
        elif debits and not refunds and not (o["status"] == OrderStatus.PENDING and o["payment_state"] == PaymentState.CHARGING
                                             and not o["overdue"]):
            v.append(Violation(2, f"order {o['order_id']} ({o['status']}) was charged without a seat or refund"))
    for e in ledger:
        parts = e["reference"].split(":")
        if parts[0] == "order" and len(parts) == 3 and parts[1] not in by_order:
            v.append(Violation(2, f"ledger entry {e['reference']} refers to no order"))

    # 3. credits conserved, in each of a user's two accounts
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for e in ledger:
        sums[(e["user_id"], e["account"])] += e["amount"]
    for u in users:
        for account, column in ((Account.SPENDABLE, "credit_balance"), (Account.PENDING, "pending_credits")):
            held, summed = u[column], sums.get((u["user_id"], account), 0)
            if held < 0:
                v.append(Violation(3, f"user {u['user_id']} has a negative {column} {held}"))
            if held != summed:
                v.append(Violation(3, f"user {u['user_id']} {column} {held} != {account} ledger sum {summed}"))

    # 4. every hold ends
    for s in seats:
        if s["status"] == SeatStatus.HELD and s["overdue"]:
            v.append(Violation(4, f"seat {s['seat_id']} is still HELD {tol:.0f}s after held_until {s['held_until']}"))
    for o in orders:
        if o["status"] == OrderStatus.PENDING and o["overdue"]:
            v.append(Violation(4, f"order {o['order_id']} is still PENDING {tol:.0f}s after its hold ended"))

    # 5. checked in at most once
    for c in checkins:
        v.append(Violation(5, f"seat {c['seat_id']} was checked in {c['n']} times"))

    # 8. a cancelled event is closed
    v += _cancelled_event_violations(engines["event-service"], tol, seats, orders, transfers)

    # 7. transfers: money moved once each way, ownership follows the last transfer, every move bumped the version
    v += _transfer_violations(transfers, ledger, changes, seat_by_id, versions)
    # 7. no code issued before a transfer admitted anyone: every check-in was by a code of the version its ticket
    # had at that moment
    for a in admitted:
        if a["code_version"] != a["version_then"]:
            v.append(Violation(7, f"seat {a['seat_id']} was checked in (entry {a['id']}, {a['scanned_at']}) by a "
                                  f"code of ticket_version {a['code_version']} while the ticket was at version "
                                  f"{a['version_then']}"))

    stats = {"seats": len(seats), "sold": sum(s["status"] in SOLD for s in seats), "check_ins": len(admitted),
             "orders": len(orders), "transfers": len(transfers), "ledger_entries": len(ledger), "users": len(users)}
    return v, stats


def _cancelled_event_violations(events_db: sa.Engine, tol: float, seats: list[dict], orders: list[dict],
                                transfers: list[dict]) -> list[Violation]:
    v: list[Violation] = []
    events = _rows(events_db, "SELECT event_id::text, status, updated_at < now() - make_interval(secs => :t) AS quiet "
                              "FROM events WHERE status IN ('CANCELLING', 'CANCELLED')", t=tol)
    for e in events:
        if e["status"] == "CANCELLING" and e["quiet"]:
            v.append(Violation(8, f"event {e['event_id']} is still CANCELLING {tol:.0f}s after its last change"))
    cancelled = {e["event_id"] for e in events if e["status"] == "CANCELLED"}
    if not cancelled:
        return v
    seat_event = {s["seat_id"]: s["event_id"] for s in seats}
    seat_by_id = {s["seat_id"]: s for s in seats}
    for s in seats:
        if s["event_id"] in cancelled and (s["on_sale"] or s["status"] == SeatStatus.HELD):
            v.append(Violation(8, f"seat {s['seat_id']} of cancelled event {s['event_id']} is "
                                  f"{'on sale' if s['on_sale'] else ''} {s['status']}"))
    for o in orders:
        if o["event_id"] not in cancelled:
            continue
        if o["status"] == OrderStatus.CONFIRMED:
            kept = [seat_by_id.get(sid) for sid in o["seat_ids"]]
            if all(seat is not None and seat["status"] == SeatStatus.SOLD and seat["owner_user_id"] == o["user_id"]
                   for seat in kept):
                v.append(Violation(8, f"order {o['order_id']} of cancelled event {o['event_id']} is CONFIRMED and "
                                      f"its fan still holds every ticket: not refunded"))
    for t in transfers:
        if t["status"] == TransferStatus.PENDING_OTP and t["overdue"] and seat_event.get(t["seat_id"]) in cancelled:
            v.append(Violation(8, f"transfer {t['transfer_id']} of cancelled event {seat_event[t['seat_id']]} still "
                                  f"waits for its codes"))
    return v


MOVED = (TransferStatus.COMPLETED, TransferStatus.DISPUTED, TransferStatus.REVERSED)
ENDED_UNMOVED = (TransferStatus.CANCELLED, TransferStatus.EXPIRED)


def _transfer_violations(transfers: list[dict], ledger: list[dict], changes: list[dict], seat_by_id: dict,
                         versions: dict) -> list[Violation]:
    v: list[Violation] = []
    rows: dict[str, dict[str, dict]] = defaultdict(dict)    # transfer id → step name → its ledger row
    for e in ledger:
        parts = e["reference"].split(":", 2)
        if parts[0] == "transfer" and len(parts) == 3:
            rows[parts[1]][parts[2]] = e
    by_id = {t["transfer_id"]: t for t in transfers}
    for transfer_id in rows.keys() - by_id.keys():
        v.append(Violation(7, f"ledger entries transfer:{transfer_id}:… refer to no transfer"))
    change_keys = {c["change_key"] for c in changes}
    changes_per_seat = Counter(c["seat_id"] for c in changes)

    for t in transfers:
        tid, amount, status = t["transfer_id"], t["amount"], t["status"]
        got = rows.get(tid, {})
        # what each row must be: (user, amount, account)
        expected = {"debit": (t["buyer_user_id"], -amount, Account.SPENDABLE),
                    "credit": (t["seller_user_id"], amount, Account.PENDING),
                    "refund": (t["buyer_user_id"], amount, Account.SPENDABLE),
                    "uncredit": (t["seller_user_id"], -amount, Account.PENDING),
                    "release": (t["seller_user_id"], amount, Account.SPENDABLE),
                    "release:pending": (t["seller_user_id"], -amount, Account.PENDING)}
        for step, e in got.items():
            want = expected.get(step)
            if want is None or (e["user_id"], e["amount"], e["account"]) != want:
                v.append(Violation(7, f"transfer {tid}: ledger row {e['reference']} is {e['amount']} "
                                      f"{e['account']} for {e['user_id']}, expected {want}"))
        money = amount > 0
        has = set(got)
        if status in MOVED:
            must = {"debit"} | ({"credit"} if money else set())
            if status == TransferStatus.REVERSED and money:
                must |= {"refund", "uncredit"}
            elif money and t["released_at"] is not None:
                must |= {"release", "release:pending"}
            if has != must:
                v.append(Violation(7, f"transfer {tid} is {status} with ledger rows {sorted(has)}, expected "
                                      f"{sorted(must)}"))
            keys = [f"transfer:{tid}:move-ticket"] + (
                [f"transfer:{tid}:return-ticket"] if status == TransferStatus.REVERSED else [])
            for key in keys:
                if key not in change_keys:
                    v.append(Violation(7, f"transfer {tid} is {status} but its ticket move {key} never happened"))
        elif status in ENDED_UNMOVED:
            undone = ("debit" not in has or "refund" in has or not money) and ("credit" not in has or "uncredit" in has)
            if not undone or has & {"release", "release:pending"}:
                v.append(Violation(7, f"transfer {tid} is {status} but its ledger rows {sorted(has)} were not undone"))
            if f"transfer:{tid}:move-ticket" in change_keys and f"transfer:{tid}:return-ticket" not in change_keys:
                v.append(Violation(7, f"transfer {tid} is {status} but moved its ticket"))
        elif status == TransferStatus.PENDING_OTP and t["overdue"]:
            v.append(Violation(7, f"transfer {tid} is still {status} after it expired"))

    # The owner of a seat that changed hands is the buyer of its last completed transfer (the seller again if
    # that one was reversed); every change of owner gave the ticket a new version, so no older code admits anyone.
    last: dict[str, dict] = {}
    for t in sorted((t for t in transfers if t["status"] in MOVED), key=lambda t: t["completed_at"]):
        last[t["seat_id"]] = t
    # A refund after the last transfer (a ticket that came back to its first buyer, then was refunded) ended that
    # ownership: the seat is on sale again, or someone else's by a new order.
    returned = defaultdict(list)
    for c in changes:
        if c["to_user_id"] is None:
            returned[c["seat_id"]].append(c["changed_at"])
    for seat_id, t in last.items():
        if any(at > t["completed_at"] for at in returned.get(seat_id, ())):
            continue
        seat = seat_by_id.get(seat_id)
        owner = t["seller_user_id"] if t["status"] == TransferStatus.REVERSED else t["buyer_user_id"]
        if seat is None or seat["owner_user_id"] != owner:
            v.append(Violation(7, f"seat {seat_id} is owned by {seat['owner_user_id'] if seat else 'nobody'}, but "
                                  f"its last transfer {t['transfer_id']} ({t['status']}) says {owner}"))
    for seat_id, n in changes_per_seat.items():
        if versions.get(seat_id) != 1 + n:
            v.append(Violation(7, f"seat {seat_id} changed owner {n} times but its ticket_version is "
                                  f"{versions.get(seat_id)}"))
    return v


def main(argv: list[str] | None = None) -> int:
    from .manage import database_url, local_settings
    from .services import DB_SERVICES

    parser = argparse.ArgumentParser(prog="python -m trcommon.audit")
    parser.add_argument("--tolerance-seconds", type=float, default=30.0,
                        help="how long past held_until a hold may still be open (default 30)")
    args = parser.parse_args(argv)
    local = local_settings()
    violations, stats = audit({name: database_url(name, local) for name in DB_SERVICES}, args.tolerance_seconds)
    for item in violations:
        print(item)
    summary = ", ".join(f"{k}={n}" for k, n in stats.items())
    print(f"audit: {len(violations)} violation(s) ({summary})")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
