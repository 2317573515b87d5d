"""The contracts themselves: path escaping, the validation boundaries of the request models, how answers are
written, error codes and their statuses, and the inventory contract against the proto."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
from trproto import inventory_pb2 as pb

from trcommon.errors import AppError, NotFound
from trcontracts import events, inventory, orders, users
from trcontracts.base import BIGINT_MAX, CommonError, ErrorCode, Route

ID = str(uuid.uuid4())
LATER = "2030-01-02T20:00:00+08:00"


def order_body(**changes) -> dict:
    return {"order_id": ID, "user_id": ID, "seat_id": ID, "event_id": ID, "amount": 50, "held_until": LATER,
            **changes}


def transfer_body(**changes) -> dict:
    return {"transfer_id": ID, "seat_id": ID, "event_id": ID, "seller_user_id": ID,
            "buyer_user_id": str(uuid.uuid4()), "amount": 80, "face_value": 100, "expires_at": LATER, **changes}


def debit_body(**changes) -> dict:
    return {"user_id": ID, "amount": 50, "reference": "order:1:debit", "reason": "seat purchase", **changes}


def refused(model, data) -> list[str]:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    return [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]


# --- paths -------------------------------------------------------------------------------------------------------

def test_every_path_parameter_is_escaped_as_one_segment():
    assert orders.BEGIN_PAYMENT.url(order_id="x/../y?z=1") == "/internal/orders/x%2F..%2Fy%3Fz%3D1/begin-payment"
    assert orders.GET_ORDER.url(order_id="a#b%20c") == "/internal/orders/a%23b%2520c"
    assert users.GET_USER.url(user_id=ID) == f"/internal/users/{ID}"


def test_a_value_of_dots_is_escaped_so_no_client_collapses_it_into_the_parent_path():
    assert orders.GET_ORDER.url(order_id="..") == "/internal/orders/%2E%2E"
    assert orders.GET_ORDER.url(order_id=".") == "/internal/orders/%2E"


def test_missing_extra_or_empty_path_parameters_are_refused():
    with pytest.raises(TypeError):
        orders.GET_ORDER.url()
    with pytest.raises(TypeError):
        orders.GET_ORDER.url(order_id=ID, user_id=ID)
    with pytest.raises(ValueError):
        orders.GET_ORDER.url(order_id="")


def test_a_read_must_be_declared_idempotent_and_bodiless():
    with pytest.raises(ValueError):
        Route("GET", "/x", orders.Order)
    with pytest.raises(ValueError):
        Route("GET", "/x", orders.Order, body=orders.BeginPaymentBody, idempotent=True)


def test_each_contract_declares_its_routes_once():
    for module in (users, orders, events):
        declared = [(r.method, r.path) for r in module.ROUTES]
        assert len(declared) == len(set(declared))
        assert set(module.ROUTES) == {v for v in vars(module).values() if isinstance(v, Route)}


# --- request models ----------------------------------------------------------------------------------------------

def test_order_amounts_are_strict_integers_within_bigint():
    assert orders.CreateOrderBody.model_validate(order_body(amount=BIGINT_MAX)).amount == BIGINT_MAX
    assert orders.CreateOrderBody.model_validate(order_body(amount=0)).amount == 0
    for amount in (BIGINT_MAX + 1, -1, "50", 50.0, True):
        assert refused(orders.CreateOrderBody, order_body(amount=amount)) == ["amount"]


def test_held_until_must_be_a_timestamp_string_with_a_time_zone():
    for held_until in (1893456000, "2030-01-02T20:00:00", "tomorrow"):
        assert refused(orders.CreateOrderBody, order_body(held_until=held_until)) == ["held_until"]


def test_ids_in_bodies_must_be_uuids():
    assert refused(orders.CreateOrderBody, order_body(seat_id="../etc/passwd")) == ["seat_id"]
    assert refused(orders.BeginPaymentBody, {"user_id": "u1"}) == ["user_id"]


def test_a_transition_names_a_known_state_and_a_short_reason():
    assert orders.TransitionBody.model_validate({"to": "FAILED", "reason": "r" * 500}).to is orders.OrderStatus.FAILED
    assert refused(orders.TransitionBody, {"to": "SHIPPED"}) == ["to"]
    assert refused(orders.TransitionBody, {"to": "FAILED", "reason": "r" * 501}) == ["reason"]


def test_order_queries_need_a_user_or_a_seat_and_bounded_pages():
    assert refused(orders.OrderQuery, {}) == [""]
    assert orders.OrderQuery.model_validate({"seat_id": ID, "limit": "200"}).limit == 200
    assert refused(orders.OrderQuery, {"seat_id": ID, "limit": "201"}) == ["limit"]
    assert refused(orders.OrderQuery, {"seat_id": ID, "offset": "1000001"}) == ["offset"]
    assert refused(orders.StaleQuery, {"grace_seconds": str(366 * 24 * 3600 + 1)}) == ["grace_seconds"]


QUERY_MODELS = [(events.Page, {}), (users.LedgerQuery, {"user_id": ID}), (orders.OrderQuery, {"seat_id": ID}),
                 (orders.TransferQuery, {"user_id": ID}), (orders.StaleQuery, {})]


@pytest.mark.parametrize("model, base", QUERY_MODELS)
@pytest.mark.parametrize("text", ["1.0", "1.5", " 5", "5 ", "+5", "5_0", "0x10", "1e3", "abc", "", "-", "\u0663",
                                  "-1", "9" * 20, str(2**63), str(2**64), "99999999999999999999999999"])
def test_query_integers_are_plain_decimal_digits_within_their_bounds(model, base, text):
    """Every integer a query string carries: anything but a bounded decimal integer is refused naming the field
    (before, "1.0", " 5" and "5_0" were read as integers, and an offset beyond 64 bits reached the database)."""
    assert refused(model, {**base, "limit": text}) == ["limit"]
    if "offset" in model.model_fields:
        assert refused(model, {**base, "offset": text}) == ["offset"]


@pytest.mark.parametrize("model, base", QUERY_MODELS)
def test_every_integer_field_of_a_query_is_bounded(model, base):
    for name, field in model.model_fields.items():
        if field.annotation is int:
            bounds = {type(m).__name__ for m in field.metadata}
            assert {"Ge", "Le"} <= bounds, (model.__name__, name)
    assert model.model_validate({**base, "limit": "7"}).limit == 7


def test_a_transfer_may_be_a_gift_but_never_negative_nor_to_its_own_seller():
    assert orders.CreateTransferBody.model_validate(transfer_body(amount=0)).amount == 0
    # Above face value is for the orchestrator's price-cap setting to judge, not the contract.
    assert orders.CreateTransferBody.model_validate(transfer_body(amount=150)).amount == 150
    for amount in (-1, "80", 80.0, BIGINT_MAX + 1):
        assert refused(orders.CreateTransferBody, transfer_body(amount=amount)) == ["amount"]
    assert refused(orders.CreateTransferBody, transfer_body(buyer_user_id=ID)) == [""]
    assert refused(orders.CreateTransferBody, transfer_body(expires_at="2030-01-02T20:00:00")) == ["expires_at"]


def test_a_transfer_transition_names_a_known_state_and_step_and_a_timestamp():
    body = orders.TransferTransitionBody.model_validate({"to": "COMPLETED", "release_at": LATER})
    assert body.to is orders.TransferStatus.COMPLETED and body.release_at.utcoffset() == timedelta(hours=8)
    assert refused(orders.TransferTransitionBody, {"to": "COMPLETED", "release_at": 1893456000}) == ["release_at"]
    assert refused(orders.TransferTransitionBody, {"to": "CANCELLED", "expected_step": "PAYING"}) == ["expected_step"]
    assert refused(orders.TransferTransitionBody, {"to": "DISPUTED", "reason": "r" * 501}) == ["reason"]
    assert refused(orders.TransferQuery, {"status": "PENDING_OTP"}) == [""]


def test_debits_are_strict_positive_amounts_up_to_the_cap():
    assert users.DebitBody.model_validate(debit_body(amount=users.MAX_AMOUNT)).amount == users.MAX_AMOUNT
    for amount in (users.MAX_AMOUNT + 1, "50", 50.5, -1):
        assert refused(users.DebitBody, debit_body(amount=amount)) == ["amount"]
    # Zero is a gift's confirmation: only with every party's code.
    assert refused(users.DebitBody, debit_body(amount=0)) == [""]
    gift = debit_body(amount=0, otp_purpose="transfer:t1", otp_parties=[
        {"user_id": "6f2a1a56-4c1f-4bd1-9a43-2f4c7c1e0a01", "code": "123456"}])
    assert users.DebitBody.model_validate(gift).amount == 0


def test_debit_otp_fields_and_deadline_have_their_formats():
    assert refused(users.DebitBody, debit_body(otp_code="12345")) == ["otp_code"]
    assert refused(users.DebitBody, debit_body(otp_purpose="Order:1")) == ["otp_purpose"]
    assert refused(users.DebitBody, debit_body(not_after="2030-01-02T20:00:00")) == ["not_after"]
    assert refused(users.DebitBody, debit_body(reference="")) == ["reference"]
    assert refused(users.DebitBody, debit_body(reason="r" * 201)) == ["reason"]


def test_registration_checks_password_and_phone():
    ok = {"email": "fan@example.com", "password": "long-enough", "phone": "+6591234567"}
    assert users.RegisterBody.model_validate(ok).email == "fan@example.com"
    assert refused(users.RegisterBody, {**ok, "password": "short"}) == ["password"]
    assert refused(users.RegisterBody, {**ok, "password": "p" * (users.PASSWORD_MAX + 1)}) == ["password"]
    assert refused(users.RegisterBody, {**ok, "password": "FAN@example.com"}) == ["password"]
    assert refused(users.RegisterBody, {**ok, "phone": "91234567"}) == ["phone"]
    assert refused(users.RegisterBody, {**ok, "email": "not-an-email"}) == ["email"]


def test_unknown_fields_are_ignored_not_refused():
    assert "role" not in users.RegisterBody.model_validate(
        {"email": "fan@example.com", "password": "long-enough", "phone": "+6591234567", "role": "admin"}).model_dump()


# --- answers -----------------------------------------------------------------------------------------------------

def test_answers_write_times_in_utc_and_states_by_name_in_declared_order():
    at = datetime(2030, 1, 2, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    order = orders.Order(order_id="o1", user_id="u1", seat_id="s1", event_id="e1", amount=50, status="PENDING",
                         payment_state="NONE", held_until=at, failure_reason=None, confirmed_at=None,
                         created_at=at, updated_at=at)
    written = order.model_dump(mode="json")
    assert list(written) == list(orders.Order.model_fields)
    assert written["held_until"] == "2030-01-02T12:00:00+00:00" and written["status"] == "PENDING"
    assert orders.Order.model_validate(written) == order


def test_an_answer_parsed_by_a_client_gives_attribute_access():
    user = users.User.model_validate({"user_id": ID, "email": "a@b.test", "phone": "+6590000001", "role": "fan",
                                      "credit_balance": 10, "pending_credits": 0, "is_flagged": False,
                                      "created_at": "2030-01-02T12:00:00+00:00", "extra": 1})
    assert user.credit_balance == 10 and user.created_at.tzinfo is not None


# --- error codes -------------------------------------------------------------------------------------------------

def test_a_code_shared_between_services_is_one_text_with_one_status():
    for alias in (users.UserError.HOLD_EXPIRED, orders.OrderError.HOLD_EXPIRED):
        assert alias == inventory.InventoryError.HOLD_EXPIRED == "HOLD_EXPIRED" and alias.status == 410
    assert users.UserError.INVALID_TOKEN == CommonError.INVALID_TOKEN and users.UserError.INVALID_TOKEN.status == 401


def test_an_error_class_or_call_naming_a_contract_code_answers_with_its_status():
    class Missing(AppError):
        code = orders.OrderError.ORDER_NOT_FOUND

    assert Missing("x").status == 404
    assert AppError("x", code=users.UserError.OTP_REQUIRED).status == 428
    assert NotFound("x", code=events.EventError.EVENT_NOT_FOUND).body() == {
        "error": {"code": "EVENT_NOT_FOUND", "message": "x"}}


def test_every_route_error_is_a_code_of_the_contracts():
    for module, enum in ((users, users.UserError), (orders, orders.OrderError), (events, events.EventError)):
        for route in module.ROUTES:
            assert all(isinstance(code, ErrorCode) for code in route.all_errors)
            assert set(route.errors) <= set(enum) | set(CommonError)


# --- inventory ---------------------------------------------------------------------------------------------------

def test_seat_states_are_the_protos_by_name_and_number():
    assert {pb.SeatStatus.Name(n) for n in inventory.SEAT_STATUS_BY_NUMBER} == {s.value for s in inventory.SeatStatus}
    assert set(pb.SeatStatus.keys()) - {s.value for s in inventory.SeatStatus} == {"SEAT_STATUS_UNSPECIFIED"}


def test_the_inventory_contract_names_every_rpc_of_the_proto():
    methods = pb.DESCRIPTOR.services_by_name["Inventory"].methods_by_name
    assert [rpc.name for rpc in inventory.RPCS] == list(methods)


def test_the_inventory_domain_raises_the_contracts_codes():
    from inventory_service.domain import exceptions

    raised = {cls.code for cls in vars(exceptions).values() if isinstance(cls, type) and issubclass(cls, AppError)
              and cls.__module__ == exceptions.__name__}
    assert raised == set(inventory.InventoryError)
    for cls in (exceptions.SeatNotFound, exceptions.TooManyHolds, exceptions.HoldExpired):
        assert cls.status == cls.code.status
