"""docs/internal-api.md is generated from the contracts (`make contracts-doc`) and kept in step with them."""
from trcommon.services import ROOT
from trcontracts import docs, events, inventory, orders, users
from trcontracts.base import CommonError


def test_the_committed_internal_api_doc_is_generated_from_the_contracts():
    assert (ROOT / "docs" / "internal-api.md").read_text() == docs.render(), "run `make contracts-doc`"


def test_the_doc_lists_every_route_and_every_code():
    text = docs.render()
    for module in (users, orders, events):
        for route in module.ROUTES:
            assert f"`{route.method} {route.path}`" in text
    for enum in (users.UserError, orders.OrderError, events.EventError, inventory.InventoryError, CommonError):
        assert all(f"`{code}`" in text for code in enum)
