"""`make audit` finds each kind of invariant violation across the four databases, and only real ones."""
import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from trcommon.audit import audit
from trcommon.services import ROOT
from trcommon.testing import all_migrated_databases


@pytest.fixture(scope="module")
def urls(pg_server_url):
    yield from all_migrated_databases(pg_server_url, "_audit")


def run(url, sql, **params):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)
    engine.dispose()


def new_user(urls, balance, ledger, pending=0, pending_ledger=()):
    """A user holding `balance` spendable and `pending` pending credits, with the given rows of each account."""
    user = str(uuid.uuid4())
    run(urls["user-service"], "INSERT INTO users (user_id, email, password_hash, phone, role, credit_balance, "
        "pending_credits) VALUES (:u, :e, 'x', '+6590000000', 'fan', :b, :p)", u=user, e=f"{user}@example.com",
        b=balance, p=pending)
    rows = [(amount, "spendable") for amount in ledger] + [(amount, "pending") for amount in pending_ledger]
    for i, (amount, account) in enumerate(rows):
        run(urls["user-service"], "INSERT INTO credit_ledger (entry_id, user_id, amount, balance_after, reason, "
            "reference, account) VALUES (:i, :u, :a, 0, 'test', :r, :acc)", i=str(uuid.uuid4()), u=user, a=amount,
            r=f"test:{user}:{i}", acc=account)
    return user


def new_seat(urls, status="AVAILABLE", owner=None, hold=None, held_until_sql="NULL", held_by=None):
    seat = str(uuid.uuid4())
    run(urls["inventory-service"],
        "INSERT INTO seats (seat_id, event_id, section, row, number, price, status, owner_user_id, hold_id, "
        f"held_by_user_id, held_until) VALUES (:s, :e, 'A', '1', 1, 50, :st, :o, :h, :hb, {held_until_sql})",
        s=seat, e=str(uuid.uuid4()), st=status, o=owner, h=hold, hb=held_by)
    return seat


def violations(urls):
    found, _ = audit(urls, tolerance_seconds=5)
    return found


def test_consistent_books_have_no_violations(urls):
    user = new_user(urls, 100, [100, -30, 30])
    # Proceeds of 80, 50 of them released: each account adds up on its own.
    seller = new_user(urls, 150, [100, 50], pending=30, pending_ledger=[80, -50])
    seat = new_seat(urls)
    held = new_seat(urls, "HELD", hold=str(uuid.uuid4()), held_by=user, held_until_sql="now() + interval '1 minute'")
    assert [v for v in violations(urls)
            if any(x in v.message for x in (user, seller, seat, held))] == []


def test_each_kind_of_violation_is_reported(urls):
    # 2: a seat sold with no confirmed order
    sold_seat = new_seat(urls, "SOLD", owner=str(uuid.uuid4()), hold=str(uuid.uuid4()))
    # 3: a balance that its ledger does not explain, and pending credits that theirs do not
    drifted = new_user(urls, 500, [100])
    pending_drifted = new_user(urls, 100, [100], pending=40, pending_ledger=[30])
    # 4: a hold long past its end
    held_user = str(uuid.uuid4())
    stuck = new_seat(urls, "HELD", hold=str(uuid.uuid4()), held_by=held_user,
                     held_until_sql="now() - interval '1 minute'")
    # 5: a ticket checked in twice
    twice = str(uuid.uuid4())
    for _ in range(2):
        run(urls["inventory-service"], "INSERT INTO entry_logs (seat_id, hall_id, result) VALUES (:s, :h, "
            "'CHECKED_IN')", s=twice, h=str(uuid.uuid4()))

    found = violations(urls)
    named = {(v.invariant, next((x for x in (sold_seat, drifted, pending_drifted, stuck, twice) if x in v.message),
                                None)) for v in found}
    assert {(2, sold_seat), (3, drifted), (3, pending_drifted), (4, stuck), (5, twice)} <= named
    assert [v.message for v in found if pending_drifted in v.message] == [
        f"user {pending_drifted} pending_credits 40 != pending ledger sum 30"]


def test_the_audit_command_exits_non_zero_on_a_violation(urls):
    overrides = {"event-service": "EVENTS_DATABASE_URL", "user-service": "USERS_DATABASE_URL",
                 "order-service": "ORDERS_DATABASE_URL", "inventory-service": "SEATS_DATABASE_URL"}
    env = {**os.environ, **{variable: urls[name] for name, variable in overrides.items()}}
    out = subprocess.run([sys.executable, "-m", "trcommon.audit", "--tolerance-seconds", "5"], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "VIOLATION (invariant 3)" in out.stdout


def ledger_row(urls, user, amount, reference, account="spendable"):
    run(urls["user-service"], "INSERT INTO credit_ledger (entry_id, user_id, amount, balance_after, reason, reference, "
        "account) VALUES (:i, :u, :a, 0, 'test', :r, :acc)", i=str(uuid.uuid4()), u=user, a=amount, r=reference,
        acc=account)


def sold_then_transferred(urls, status="COMPLETED", amount=40, rows=("debit", "credit"), moved=True, version=2,
                          owner="buyer"):
    """A seat bought by a seller and transferred to a buyer, with the given ledger rows and seat state."""
    seller, buyer = new_user(urls, 0, []), new_user(urls, 0, [])
    order, transfer = str(uuid.uuid4()), str(uuid.uuid4())
    seat = new_seat(urls, "SOLD", owner=buyer if owner == "buyer" else seller, hold=order)
    run(urls["order-service"], "INSERT INTO orders (order_id, user_id, seat_id, seat_ids, event_id, amount, status, "
        "payment_state, held_until) VALUES (:o, :u, :s, ARRAY[CAST(:s AS uuid)], :e, 50, 'CONFIRMED', 'CHARGING', "
        "now())",
        o=order, u=seller, s=seat, e=str(uuid.uuid4()))
    ledger_row(urls, seller, -50, f"order:{order}:debit")
    run(urls["order-service"], "INSERT INTO transfers (transfer_id, seat_id, event_id, seller_user_id, buyer_user_id, "
        "amount, face_value, status, step, expires_at, completed_at, release_at) VALUES (:t, :s, :e, :se, :b, :a, 50, "
        ":st, 'CONFIRMING', now(), now(), now() + interval '1 day')",
        t=transfer, s=seat, e=str(uuid.uuid4()), se=seller, b=buyer, a=amount, st=status)
    signs = {"debit": (buyer, -amount, "spendable"), "credit": (seller, amount, "pending"),
             "refund": (buyer, amount, "spendable"), "uncredit": (seller, -amount, "pending")}
    for step in rows:
        user, value, account = signs[step]
        ledger_row(urls, user, value, f"transfer:{transfer}:{step}", account)
    if moved:
        run(urls["inventory-service"], "INSERT INTO ownership_changes (change_key, seat_id, from_user_id, to_user_id, "
            "ticket_version) VALUES (:k, :s, :f, :t, 2)", k=f"transfer:{transfer}:move-ticket", s=seat, f=seller,
            t=buyer)
    run(urls["inventory-service"], "UPDATE seats SET ticket_version = :v WHERE seat_id = :s", v=version, s=seat)
    return transfer, seat


def checked_in(urls, seat, code_version):
    """A check-in logged a moment after everything written so far, by a code of `code_version`."""
    run(urls["inventory-service"], "INSERT INTO entry_logs (seat_id, hall_id, result, ticket_version, scanned_at) "
        "VALUES (:s, :h, 'CHECKED_IN', :v, now() + interval '1 second')", s=seat, h=str(uuid.uuid4()), v=code_version)


def test_a_consistent_transfer_has_no_violations(urls):
    transfer, seat = sold_then_transferred(urls)
    checked_in(urls, seat, 2)                       # the buyer's code, issued after the transfer
    assert [v for v in violations(urls) if transfer in v.message or seat in v.message] == []


def test_a_check_in_by_a_code_from_before_a_transfer_or_with_no_version_is_reported(urls):
    _, by_sellers_code = sold_then_transferred(urls)
    checked_in(urls, by_sellers_code, 1)
    unversioned = str(uuid.uuid4())
    checked_in(urls, unversioned, None)
    found = {v.message.split(" was checked in")[0]: v for v in violations(urls) if "was checked in (entry" in v.message}
    assert found[f"seat {by_sellers_code}"].invariant == 7
    assert "by a code of ticket_version 1 while the ticket was at version 2" in found[f"seat {by_sellers_code}"].message
    assert "by a code of ticket_version None while the ticket was at version 1" in found[f"seat {unversioned}"].message


def test_each_kind_of_transfer_violation_is_reported(urls):
    unpaid, _ = sold_then_transferred(urls, rows=("debit",))                      # the seller was never credited
    wrong_owner, wrong_seat = sold_then_transferred(urls, owner="seller")         # the ticket did not follow
    stale, stale_seat = sold_then_transferred(urls, version=1)                    # old codes would still work
    kept, _ = sold_then_transferred(urls, status="EXPIRED", rows=("debit",), moved=False, owner="seller")
    found = violations(urls)

    def about(x):
        return [v.message for v in found if v.invariant == 7 and x in v.message]

    assert about(unpaid) == [f"transfer {unpaid} is COMPLETED with ledger rows ['debit'], expected ['credit', 'debit']"]
    assert about(wrong_seat) and "its last transfer" in about(wrong_seat)[0]
    assert about(stale_seat) == [f"seat {stale_seat} changed owner 1 times but its ticket_version is 1"]
    assert about(kept) == [f"transfer {kept} is EXPIRED but its ledger rows ['debit'] were not undone"]


def party_order(urls, seat_states=("SOLD",) * 4, charged=200, amount=200):
    """A CONFIRMED order of four 50-credit seats, its seats in the given states and its debit of `charged`."""
    fan, order = new_user(urls, 1000 - charged, [1000]), str(uuid.uuid4())
    sold = {"owner": fan, "hold": order}
    seats = sorted(new_seat(urls, state, **(sold if state == "SOLD" else {})) for state in seat_states)
    run(urls["order-service"], "INSERT INTO orders (order_id, user_id, seat_id, seat_ids, event_id, amount, status, "
        "payment_state, held_until) VALUES (:o, :u, :s, CAST(:ss AS uuid[]), :e, :a, 'CONFIRMED', 'CHARGING', now())",
        o=order, u=fan, s=seats[0], ss=seats, e=str(uuid.uuid4()), a=amount)
    ledger_row(urls, fan, -charged, f"order:{order}:debit")
    return order, seats


def test_a_party_order_charged_once_with_every_seat_sold_has_no_violations(urls):
    order, seats = party_order(urls)
    assert [v.message for v in violations(urls) if order in v.message or any(s in v.message for s in seats)] == []
    # Every seat of an order counts, not only its first (which a unique index already keeps to one CONFIRMED
    # order): a second CONFIRMED order of another one is a seat sold twice.
    again, _ = party_order(urls, seat_states=("SOLD",), charged=50, amount=50)
    run(urls["order-service"], "UPDATE orders SET seat_ids = CAST(:ss AS uuid[]), seat_id = :s WHERE order_id = :o",
        ss=[seats[2]], s=seats[2], o=again)
    assert f"seat {seats[2]} has 2 CONFIRMED orders" in [v.message for v in violations(urls) if v.invariant == 1]


def test_a_partial_or_mischarged_party_order_is_reported(urls):
    partial, partial_seats = party_order(urls, seat_states=("SOLD", "SOLD", "SOLD", "AVAILABLE"))
    mischarged, _ = party_order(urls, charged=50)
    underpriced, _ = party_order(urls, charged=150, amount=150)
    messages = [v.message for v in violations(urls) if v.invariant == 2]
    available = next(s for s in partial_seats if f"seat {s} is AVAILABLE" in " ".join(messages))
    assert f"confirmed order {partial} but seat {available} is AVAILABLE" in messages
    assert f"confirmed order {mischarged} of 200 credits was charged 50" in messages
    assert f"confirmed order {underpriced} costs 150, its 4 seats 200" in messages


def refunded_order(urls, refund=200, seat_state="AVAILABLE", status="REFUNDED"):
    """A party order of four 50-credit seats refunded with `refund` credits; its seats in `seat_state` (SOLD: still
    the fan's under the order)."""
    order, seats = party_order(urls)
    fan = str(run_scalar(urls["order-service"], "SELECT user_id FROM orders WHERE order_id = :o", o=order))
    run(urls["order-service"], "UPDATE orders SET status = :st WHERE order_id = :o", st=status, o=order)
    if refund is not None:
        ledger_row(urls, fan, refund, f"order:{order}:refund")
        run(urls["user-service"], "UPDATE users SET credit_balance = credit_balance + :r WHERE user_id = :u",
            r=refund, u=fan)
    if seat_state != "SOLD":
        run(urls["inventory-service"], "UPDATE seats SET status = :st, owner_user_id = NULL, hold_id = NULL "
            "WHERE seat_id = ANY(CAST(:ss AS uuid[]))", st=seat_state, ss=seats)
    return order, seats


def run_scalar(url, sql, **params):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        value = conn.execute(sa.text(sql), params).scalar_one()
    engine.dispose()
    return value


def test_a_refunded_order_with_one_refund_of_its_amount_and_its_seats_back_on_sale_has_no_violations(urls):
    order, seats = refunded_order(urls)
    assert [v.message for v in violations(urls) if order in v.message or any(s in v.message for s in seats)] == []


def test_a_refund_missing_short_or_with_seats_still_sold_is_reported(urls):
    unpaid, _ = refunded_order(urls, refund=None)
    short, _ = refunded_order(urls, refund=150)
    kept, kept_seats = refunded_order(urls, seat_state="SOLD")
    messages = [v.message for v in violations(urls) if v.invariant == 2]
    assert f"refunded order {unpaid} has 1 debits and 0 refunds" in messages
    assert f"refunded order {short} of 200 credits was refunded 150" in messages
    assert f"refunded order {kept} but seat {kept_seats[0]} is still SOLD under it" in messages


def test_a_ticket_reversed_to_its_first_buyer_then_refunded_is_not_reported_against_its_old_transfer(urls):
    transfer, seat = sold_then_transferred(urls, status="REVERSED", rows=("debit", "credit", "refund", "uncredit"))
    run(urls["inventory-service"], "INSERT INTO ownership_changes (change_key, seat_id, from_user_id, to_user_id, "
        "ticket_version, changed_at) VALUES (:k, :s, :f, :f, 3, now()), (:r, :s, :f, NULL, 4, now() + interval "
        "'1 second')", k=f"transfer:{transfer}:return-ticket", r=f"order:{uuid.uuid4()}:take-back", s=seat,
        f=str(uuid.uuid4()))
    run(urls["inventory-service"], "UPDATE seats SET status = 'AVAILABLE', owner_user_id = NULL, hold_id = NULL, "
        "ticket_version = 4 WHERE seat_id = :s", s=seat)
    assert [v.message for v in violations(urls) if v.invariant == 7 and seat in v.message] == []
