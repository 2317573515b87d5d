import pytest

from orchestrator_service.domain.ids import canonical_uuid, required_uuid
from orchestrator_service.entrypoints.openapi import build_document
from trcommon.errors import InvalidInput

ID = "b385de85-7147-54c8-992c-aa2992fe4b2c"


def test_a_uuid_in_its_standard_form_is_read_in_lower_case():
    assert canonical_uuid(ID) == ID and canonical_uuid(ID.upper()) == ID
    assert required_uuid("event_id", ID.upper()) == ID


@pytest.mark.parametrize("value", [
    f"{ID}?x=1", f"{ID}/seats", f"{ID}\n", f" {ID}", ID.replace("-", ""), f"{{{ID}}}", f"urn:uuid:{ID}",
    ID[:8] + ID[9:13] + "-" + ID[14:], "..", "", "x" * 36, None, 42, ID.encode()])
def test_anything_else_names_nothing_and_is_a_400_naming_the_parameter(value):
    assert canonical_uuid(value) is None
    with pytest.raises(InvalidInput) as err:
        required_uuid("event_id", value)
    assert err.value.status == 400 and err.value.details[0]["field"] == "event_id"


def test_the_document_says_every_path_parameter_is_a_uuid_and_may_be_refused_with_400():
    for path, ops in build_document()["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert param["schema"]["format"] == "uuid" and "400" in op["responses"], path
