"""The orchestrator dies at each step boundary of the three transfer sagas (confirm, reversal, release of the
proceeds; a failpoint exits the process the way SIGKILL would, docs/sagas.md), and the services a confirm calls
are killed under it. The recovery worker must bring every transfer to a consistent end, with the credits and the
ticket moved exactly once or not at all. The boundaries come from the sagas' step lists: a new step needs its case
here."""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import pytest
import sqlalchemy as sa

from e2e_support import E2E_ENV, balance, dies, ledger_refs, login, seat_row, wait_until
from orchestrator_service.service_layer.transfers import CONFIRM, RELEASE, REVERSAL
from orchestrator_service.settings import OrchestratorSettings
from test_transfers import TTL, WINDOW, buyer_with, code_for, confirm, initiate, me, offered, owned_seat, owner

AMOUNT = 40
BUYER_CREDITS = 100
FENCE = OrchestratorSettings().debit_fence_seconds
assert "DEBIT_FENCE_SECONDS" not in E2E_ENV      # the stack runs with the default fence read above
FAILPOINTS = CONFIRM.failpoints() + REVERSAL.failpoints() + RELEASE.failpoints()


def transfer_row(engines, transfer_id: str) -> dict:
    with engines["order-service"].connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM transfers WHERE transfer_id = :t"), {"t": transfer_id})
                    .mappings().one())


def ended(engines, transfer_id: str, timeout: float, leaving: str = "PENDING_OTP") -> dict:
    """The transfer's row once it is no longer `leaving`."""
    return wait_until(lambda: (t := transfer_row(engines, transfer_id))["status"] != leaving and t, timeout,
                      what=f"transfer {transfer_id} to leave {leaving}")


def moves(engines, transfer_id: str) -> list[str]:
    """The ownership changes inventory made for this transfer (one row per change key)."""
    with engines["inventory-service"].connect() as conn:
        return sorted(conn.execute(sa.text("SELECT change_key FROM ownership_changes WHERE change_key LIKE :k"),
                                   {"k": f"transfer:{transfer_id}:%"}).scalars())


def keys(transfer_id: str, *names: str) -> list[str]:
    return sorted(f"transfer:{transfer_id}:{n}" for n in names)


@dataclass
class Deal:
    """A seat its seller offers to a funded buyer, with everything as it was before the offer."""

    seat_id: str
    seller: object
    buyer: object
    version: int
    seller_before: dict
    transfer_id: str | None = None

    def codes(self, engines) -> tuple[str, str]:
        return (code_for(engines, self.seller.phone, self.transfer_id),
                code_for(engines, self.buyer.phone, self.transfer_id))


def a_deal(api, fresh_event, engines, offer: bool = True) -> Deal:
    ev, seller = owned_seat(api, fresh_event)
    seat_id = ev.seat_ids[0]
    d = Deal(seat_id, seller, buyer_with(api, BUYER_CREDITS), seat_row(engines, seat_id)["ticket_version"],
             me(api, seller))
    if offer:
        d.transfer_id = offered(api, seller, d.seat_id, d.buyer, AMOUNT)
    return d


def confirm_of(api, engines, d: Deal):
    return confirm(api, engines, d.buyer, d.transfer_id, d.seller, d.buyer, *d.codes(engines))


def assert_nothing_moved(api, engines, d: Deal) -> None:
    seat = seat_row(engines, d.seat_id)
    assert (str(seat["owner_user_id"]), seat["ticket_version"]) == (d.seller.user_id, d.version)
    assert balance(api, d.buyer.token) == BUYER_CREDITS
    seller = me(api, d.seller)
    assert (seller["credit_balance"], seller["pending_credits"]) == (d.seller_before["credit_balance"],
                                                                     d.seller_before["pending_credits"])
    assert ledger_refs(engines, f"transfer:{d.transfer_id}:") == []
    assert moves(engines, d.transfer_id) == []


def assert_completed_once(api, engines, d: Deal) -> None:
    """COMPLETED: the seat is the buyer's under a new ticket version, the buyer was charged once and the seller's
    proceeds were credited once, still pending (the dispute window is open)."""
    t = transfer_row(engines, d.transfer_id)
    assert t["status"] == "COMPLETED" and t["released_at"] is None, t
    seat = seat_row(engines, d.seat_id)
    assert (str(seat["owner_user_id"]), seat["ticket_version"]) == (d.buyer.user_id, d.version + 1)
    assert moves(engines, d.transfer_id) == keys(d.transfer_id, "move-ticket")
    assert balance(api, d.buyer.token) == BUYER_CREDITS - AMOUNT
    seller = me(api, d.seller)
    assert (seller["credit_balance"], seller["pending_credits"]) == (
        d.seller_before["credit_balance"], d.seller_before["pending_credits"] + AMOUNT)
    assert sorted(ledger_refs(engines, f"transfer:{d.transfer_id}:")) == keys(d.transfer_id, "debit", "credit")


def assert_confirm_repeats_completed(api, engines, d: Deal) -> None:
    """/transfer/confirm repeated by either party answers the same completion and moves nothing more."""
    for who in (d.buyer, d.seller):
        r = confirm(api, engines, who, d.transfer_id, d.seller, d.buyer, *d.codes(engines))
        assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
    assert_completed_once(api, engines, d)


def assert_confirm_refused(api, engines, d: Deal) -> None:
    r = confirm_of(api, engines, d)
    assert r.status_code in (409, 410), r.text
    assert_nothing_moved(api, engines, d)


# --- the confirm saga ----------------------------------------------------------------------------------------------

@dataclass
class World:
    """What a crash case works with: the normal stack (whose recovery worker must converge it) and a way to start
    an orchestrator process that dies at the case's failpoint."""

    api: object
    stack: object
    engines: dict
    fresh_event: object
    failpoint: str
    crashing_api: object
    crashing_process: object

    def crashing(self):
        return self.crashing_api(self.failpoint)

    def deal(self, offer: bool = True) -> Deal:
        return a_deal(self.api, self.fresh_event, self.engines, offer)


def an_initiate_dying(w: World) -> Deal:
    """The seller's offer, made through the crashing orchestrator: its answer never comes, but its record is there."""
    crashing = w.crashing()
    d = w.deal(offer=False)
    dies(lambda: initiate(crashing, d.seller, d.seat_id, d.buyer, AMOUNT))
    [t] = w.api.get("/me/transfers", d.seller.token).json()["transfers"]
    assert t["status"] == "PENDING_OTP"
    d.transfer_id = t["transfer_id"]
    return d


def dying_after_the_record_before_the_codes_expires_it_with_nothing_moved(w: World):
    d = an_initiate_dying(w)
    with w.engines["user-service"].connect() as conn:       # no code was sent: nobody can confirm it
        assert conn.execute(sa.text("SELECT count(*) FROM sms_outbox WHERE body LIKE :t"),
                            {"t": f"%transfer:{d.transfer_id}%"}).scalar_one() == 0
    row = ended(w.engines, d.transfer_id, TTL + 10)
    assert row["status"] == "EXPIRED" and row["updated_at"] >= row["expires_at"], row
    assert_nothing_moved(w.api, w.engines, d)
    offered(w.api, d.seller, d.seat_id, d.buyer, AMOUNT)      # the seat can be offered again


def dying_after_the_codes_leaves_an_offer_the_parties_can_confirm(w: World):
    d = an_initiate_dying(w)
    # The seller's retry finds the offer open; both codes were sent, so the parties can go on with it.
    r = initiate(w.api, d.seller, d.seat_id, d.buyer, AMOUNT)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "TRANSFER_ALREADY_OPEN"), r.text
    r = confirm_of(w.api, w.engines, d)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
    assert_completed_once(w.api, w.engines, d)


def dying_after_the_confirm_began_expires_it_after_the_fence_with_nothing_charged(w: World):
    crashing = w.crashing()
    d = w.deal()
    dies(lambda: confirm_of(crashing, w.engines, d))
    assert transfer_row(w.engines, d.transfer_id)["step"] == "CONFIRMING"
    # A debit is refused after expires_at: once the fence has passed too, "no debit" is final.
    row = ended(w.engines, d.transfer_id, TTL + FENCE + 10)
    assert row["status"] == "EXPIRED", row
    assert row["updated_at"] >= row["expires_at"] + timedelta(seconds=FENCE), row
    assert_nothing_moved(w.api, w.engines, d)
    assert_confirm_refused(w.api, w.engines, d)


def a_confirm_dying_after_its_debit_completes_once(w: World, landed):
    crashing = w.crashing()
    d = w.deal()
    dies(lambda: confirm_of(crashing, w.engines, d))
    assert landed(w, d), "the crash came before the step it is named after had taken effect"
    row = ended(w.engines, d.transfer_id, 15)
    assert row["status"] == "COMPLETED", row
    assert_completed_once(w.api, w.engines, d)
    assert_confirm_repeats_completed(w.api, w.engines, d)





# --- the reversal saga ---------------------------------------------------------------------------------------------

def a_reversal_dying_once_begun_reverses_once(w: World, landed):
    crashing = w.crashing()          # started first: the dispute window is short
    d = w.deal()
    assert confirm_of(w.api, w.engines, d).status_code == 200
    r = w.api.post("/transfer/dispute", d.buyer.token, json={"transfer_id": d.transfer_id, "reason": "wrong seat"})
    assert r.status_code == 200 and r.json()["status"] == "DISPUTED", r.text
    admin = login(w.api, "admin@demo.test")
    dies(lambda: crashing.post("/transfer/reverse", admin, json={"transfer_id": d.transfer_id}))
    assert transfer_row(w.engines, d.transfer_id)["step"] == "REVERSING"
    assert landed(w, d), "the crash came before the step it is named after had taken effect"
    # Once a reversal has begun the dispute can only end reversed: closing it the other way now would leave a
    # returned ticket, or a refunded buyer, on a transfer that releases the seller's proceeds.
    r = w.api.post("/transfer/resolve", admin, json={"transfer_id": d.transfer_id, "resolution": "the sale stands"})
    assert r.status_code == 409, r.text
    row = ended(w.engines, d.transfer_id, 15, leaving="DISPUTED")
    assert row["status"] == "REVERSED", row
    assert_reversed_once(w.api, w.engines, d)
    r = w.api.post("/transfer/reverse", admin, json={"transfer_id": d.transfer_id})
    assert r.status_code == 200 and r.json()["status"] == "REVERSED", r.text
    assert_reversed_once(w.api, w.engines, d)


def assert_reversed_once(api, engines, d: Deal) -> None:
    """REVERSED: the seat is back with the seller (moved twice, each once), the buyer refunded once and the seller's
    pending proceeds cancelled once; nothing was released."""
    assert transfer_row(engines, d.transfer_id)["status"] == "REVERSED"
    seat = seat_row(engines, d.seat_id)
    assert (str(seat["owner_user_id"]), seat["ticket_version"]) == (d.seller.user_id, d.version + 2)
    assert moves(engines, d.transfer_id) == keys(d.transfer_id, "move-ticket", "return-ticket")
    assert balance(api, d.buyer.token) == BUYER_CREDITS
    seller = me(api, d.seller)
    assert (seller["credit_balance"], seller["pending_credits"]) == (d.seller_before["credit_balance"],
                                                                     d.seller_before["pending_credits"])
    assert sorted(ledger_refs(engines, f"transfer:{d.transfer_id}:")) == keys(
        d.transfer_id, "debit", "credit", "refund", "uncredit")






# --- the release of the proceeds -----------------------------------------------------------------------------------

def unreleased(engines) -> int:
    with engines["order-service"].connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM transfers WHERE status = 'COMPLETED' "
                                    "AND released_at IS NULL")).scalar_one()


def dying_after_the_release_releases_the_proceeds_once(w: World):
    """Only the recovery worker releases proceeds: the stack's worker is stopped while one that dies at the
    boundary runs. Its first due release must be this transfer's, so earlier transfers are released first."""
    wait_until(lambda: unreleased(w.engines) == 0, WINDOW + 10, what="earlier transfers' proceeds to be released")
    w.stack.kill("orchestrator-worker")
    try:
        d = w.deal()
        assert confirm_of(w.api, w.engines, d).status_code == 200
        worker = w.crashing_process(w.failpoint, "orchestrator-worker").procs["orchestrator-worker"]
        assert worker.wait(WINDOW + 15) == 137
        assert transfer_row(w.engines, d.transfer_id)["released_at"] is None
        assert sorted(ledger_refs(w.engines, f"transfer:{d.transfer_id}:")) == keys(
            d.transfer_id, "debit", "credit", "release", "release:pending")
    finally:
        w.stack.start(["orchestrator-worker"])
    wait_until(lambda: transfer_row(w.engines, d.transfer_id)["released_at"], 15, what="the release to be recorded")
    seller = me(w.api, d.seller)
    assert (seller["credit_balance"], seller["pending_credits"]) == (
        d.seller_before["credit_balance"] + AMOUNT, d.seller_before["pending_credits"])
    assert sorted(ledger_refs(w.engines, f"transfer:{d.transfer_id}:")) == keys(
        d.transfer_id, "debit", "credit", "release", "release:pending")
    assert balance(w.api, d.buyer.token) == BUYER_CREDITS - AMOUNT


def ledger_row(name: str):
    """What a crash after a credit step leaves: the step's ledger row."""
    return lambda w, d: ledger_refs(w.engines, f"transfer:{d.transfer_id}:{name}")


def seat_owned_by(party: str):
    """What a crash around a ticket's move leaves: the seat's owner."""
    return lambda w, d: owner(w.engines, d.seat_id) == getattr(d, party).user_id


CASES = {
    "transfer:record": dying_after_the_record_before_the_codes_expires_it_with_nothing_moved,
    "transfer:codes": dying_after_the_codes_leaves_an_offer_the_parties_can_confirm,
    "transfer:debit:begun": dying_after_the_confirm_began_expires_it_after_the_fence_with_nothing_charged,
    "transfer:debit": partial(a_confirm_dying_after_its_debit_completes_once, landed=ledger_row("debit")),
    "transfer:credit": partial(a_confirm_dying_after_its_debit_completes_once, landed=ledger_row("credit")),
    "transfer:move-ticket": partial(a_confirm_dying_after_its_debit_completes_once, landed=seat_owned_by("buyer")),
    "reversal:return-ticket:begun": partial(a_reversal_dying_once_begun_reverses_once, landed=seat_owned_by("buyer")),
    "reversal:return-ticket": partial(a_reversal_dying_once_begun_reverses_once, landed=seat_owned_by("seller")),
    "reversal:refund": partial(a_reversal_dying_once_begun_reverses_once, landed=ledger_row("refund")),
    "reversal:uncredit": partial(a_reversal_dying_once_begun_reverses_once, landed=ledger_row("uncredit")),
    "release:release": dying_after_the_release_releases_the_proceeds_once,
}


def test_every_step_boundary_of_the_transfer_sagas_has_a_crash_case():
    assert set(CASES) == set(FAILPOINTS)


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_the_orchestrator_dying_at_a_transfer_step_boundary_converges(failpoint, api, stack, engines, fresh_event,
                                                                      crashing_api, crashing_process):
    CASES[failpoint](World(api, stack, engines, fresh_event, failpoint, crashing_api, crashing_process))


# --- services killed under a confirm -------------------------------------------------------------------------------

def _in_background(call) -> tuple[threading.Thread, list]:
    answer: list = []
    thread = threading.Thread(target=lambda: answer.append(call()))
    thread.start()
    return thread, answer


def lock_waits(engine) -> int:
    """How many sessions of this database are waiting for a lock."""
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()")).scalar_one()


def _converges_to_completed_once_when_it_returns(api, stack, engines, d: Deal, answer: list, service: str):
    [r] = answer
    assert r.status_code == 503, r.text
    stack.start([service])
    stack.wait_healthy(30)
    row = ended(engines, d.transfer_id, 20)
    assert row["status"] == "COMPLETED", row
    assert_completed_once(api, engines, d)
    assert_confirm_repeats_completed(api, engines, d)


def test_user_service_killed_between_the_debit_and_the_credit_converges_when_it_returns(api, stack, fresh_event,
                                                                                         engines):
    d = a_deal(api, fresh_event, engines)
    codes = d.codes(engines)
    users_db = engines["user-service"]
    # The seller's row locked from here holds the credit (a ledger row of the seller's) after the buyer's debit.
    with users_db.connect() as conn:
        lock = conn.begin()
        conn.execute(sa.text("SELECT 1 FROM users WHERE user_id = :u FOR UPDATE"), {"u": d.seller.user_id})
        thread, answer = _in_background(
            lambda: confirm(api, engines, d.buyer, d.transfer_id, d.seller, d.buyer, *codes))
        try:
            wait_until(lambda: ledger_refs(engines, f"transfer:{d.transfer_id}:debit"), 10, what="the debit")
            wait_until(lambda: lock_waits(users_db), 10, what="the credit to wait for the seller's row")
        finally:
            stack.kill("user-service")
            lock.rollback()
    thread.join(30)
    assert sorted(ledger_refs(engines, f"transfer:{d.transfer_id}:")) == keys(d.transfer_id, "debit")
    assert owner(engines, d.seat_id) == d.seller.user_id
    _converges_to_completed_once_when_it_returns(api, stack, engines, d, answer, "user-service")


def test_inventory_service_killed_after_the_debit_and_the_credit_converges_when_it_returns(api, stack, fresh_event,
                                                                                          engines):
    d = a_deal(api, fresh_event, engines)
    codes = d.codes(engines)
    stack.signal("inventory-service", signal.SIGSTOP)      # frozen: the ticket's move waits for it
    try:
        thread, answer = _in_background(
            lambda: confirm(api, engines, d.buyer, d.transfer_id, d.seller, d.buyer, *codes))
        wait_until(lambda: ledger_refs(engines, f"transfer:{d.transfer_id}:credit"), 10, what="the credit")
    finally:
        stack.kill("inventory-service")
    thread.join(30)
    assert sorted(ledger_refs(engines, f"transfer:{d.transfer_id}:")) == keys(d.transfer_id, "debit", "credit")
    assert moves(engines, d.transfer_id) == []
    _converges_to_completed_once_when_it_returns(api, stack, engines, d, answer, "inventory-service")
