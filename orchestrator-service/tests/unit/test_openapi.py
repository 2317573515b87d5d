from orchestrator_service.entrypoints.openapi import build_document


def test_every_request_body_schema_is_defined_in_components():
    doc = build_document()
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for op in ops.values():
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in schemas, path


def test_protected_routes_declare_bearer_auth_and_public_ones_do_not():
    paths = build_document()["paths"]
    assert paths["/reserve"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/auth/login"]["post"]
    assert "security" not in paths["/events"]["get"]


def test_path_parameters_are_declared():
    op = build_document()["paths"]["/events/{event_id}/seats"]["get"]
    assert op["parameters"][0]["name"] == "event_id"
