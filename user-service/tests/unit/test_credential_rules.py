import pytest

from trcontracts.users import Account, normalize_email, password_problem, phone_problem
from user_service.domain.model import LedgerEntry


def test_password_of_eight_to_128_characters_is_accepted():
    assert password_problem("x" * 8, "a@example.com") is None
    assert password_problem("x" * 128, "a@example.com") is None


@pytest.mark.parametrize("password", ["", "short", "x" * 7, "x" * 129])
def test_password_outside_eight_to_128_characters_is_refused(password):
    assert password_problem(password, "a@example.com")


def test_password_equal_to_the_email_is_refused_whatever_the_case():
    assert "email" in password_problem("Fan.One@Example.com", "fan.one@example.com")


@pytest.mark.parametrize("phone", ["+6591234567", "+14155550123", "+12345678", "+123456789012345"])
def test_e164_phone_numbers_are_accepted(phone):
    assert phone_problem(phone) is None


@pytest.mark.parametrize("phone", ["6591234567", "+0591234567", "+1234567", "+1234567890123456", "+65 9123 4567",
                                   "+6591234567\n", "", "+65912345a7"])
def test_phone_numbers_not_in_e164_are_refused(phone):
    assert phone_problem(phone)


def test_emails_are_normalised_to_lower_case_without_surrounding_spaces():
    assert normalize_email("  Fan.One@Example.COM ") == "fan.one@example.com"


def test_a_ledger_reference_replayed_for_another_user_amount_or_account_is_not_the_same_request():
    entry = LedgerEntry("e", "u1", -50, 950, "order", "order:1:debit", Account.SPENDABLE, None)
    assert entry.is_same_request("u1", -50, Account.SPENDABLE)
    assert not entry.is_same_request("u2", -50, Account.SPENDABLE)
    assert not entry.is_same_request("u1", -51, Account.SPENDABLE)
    assert not entry.is_same_request("u1", 50, Account.SPENDABLE)
    assert not entry.is_same_request("u1", -50, Account.PENDING)
