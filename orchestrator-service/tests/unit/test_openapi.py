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


def test_every_reference_in_the_document_resolves():
    import json
    import re

    doc = build_document()
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc))):
        assert ref in doc["components"]["schemas"], ref


def test_transfer_and_ticket_routes_document_their_request_and_answer():
    paths = build_document()["paths"]
    for path, method in (("/transfer/initiate", "post"), ("/transfer/confirm", "post"), ("/transfer/cancel", "post"),
                         ("/transfer/dispute", "post"), ("/transfer/reverse", "post"),
                         ("/transfers/{transfer_id}", "get"), ("/me/transfers", "get"), ("/me/tickets", "get"),
                         ("/me", "get")):
        op = paths[path][method]
        ok = next(status for status in op["responses"] if status.startswith("2"))
        assert "$ref" in op["responses"][ok]["content"]["application/json"]["schema"], path
        assert op["security"] == [{"bearerAuth": []}]
        if method == "post":
            assert "requestBody" in op, path
    me = build_document()["components"]["schemas"]["Profile"]
    assert {"credit_balance", "pending_credits"} <= set(me["properties"])


def test_gate_routes_document_their_request_answer_and_who_may_call():
    doc = build_document()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    qr, verify, keys = (paths["/tickets/{seat_id}/qr"]["get"], paths["/verify"]["post"],
                        paths["/verify/keys"]["get"])
    assert qr["security"] == verify["security"] == [{"bearerAuth": []}] and "security" not in keys
    assert verify["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/VerifyBody")
    assert {"401", "403", "400"} <= set(verify["responses"])
    for op, answer in ((qr, "QrCode"), (verify, "ScanVerdict"), (keys, "PublicKeys")):
        assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/" + answer)
    assert set(schemas["ScanVerdict"]["properties"]["result"]["enum"]) == {
        "CHECKED_IN", "DUPLICATE", "UNPAID", "NOT_FOUND", "WRONG_HALL", "EXPIRED", "INVALID"}
    assert schemas["VerifyBody"]["properties"]["qr"]["maxLength"] == 2048
    assert qr["parameters"][0]["name"] == "seat_id"
    assert set(qr["responses"]["200"]["content"]) == {"application/json", "image/png"}
