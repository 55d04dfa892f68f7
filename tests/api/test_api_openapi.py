"""The committed OpenAPI spec is the implementation's."""

from __future__ import annotations

import json
from pathlib import Path

from api_support import ATTEMPT_FIELDS, ITEM_FIELDS
from fleetbatch.api.spec import openapi_json

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_spec_matches_the_app() -> None:
    generated = openapi_json()
    assert json.loads(COMMITTED.read_text()) == json.loads(generated), (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )
    assert COMMITTED.read_text() == generated


def test_spec_documents_every_route_and_its_errors() -> None:
    spec = json.loads(openapi_json())
    paths = spec["paths"]
    assert set(paths) == {
        "/healthz",
        "/readyz",
        "/api/batches",
        "/api/batches/{batch_id}",
        "/api/batches/{batch_id}/files",
        "/api/batches/{batch_id}/items",
        "/api/batches/{batch_id}/items/{key}",
        "/api/batches/{batch_id}/pause",
        "/api/batches/{batch_id}/resume",
        "/api/batches/{batch_id}/cancel",
        "/api/batches/{batch_id}/redrive",
        "/api/batches/{batch_id}/approve",
        "/api/batches/{batch_id}/report.csv",
        "/api/batches/{batch_id}/rejections.csv",
        "/api/batches/{batch_id}/events",
        "/api/batches/{batch_id}/outputs",
        "/api/batches/{batch_id}/outputs/{name}",
        "/codec/decode",
        "/codec/encode",
    }
    upload = paths["/api/batches"]["post"]
    assert set(upload["responses"]) == {"201", "401", "403", "404", "409", "413", "422", "503"}
    body = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"]
    assert body["properties"]["file"]["format"] == "binary"
    assert set(body["properties"]) == {
        "file",
        "pipeline",
        "command",
        "format",
        "batch_id",
        "chunk_size",
        "max_in_flight",
        "priority",
        "max_failures",
        "waves",
        "gate_failures",
        "gate_min_items",
        "approve_waves",
        "on_gate_failure",
        "webhook_url",
        "policy",
        "start_at",
        "end_at",
        "on_end",
        "windows",
        "ramp",
        "overshoot",
    }
    listing = paths["/api/batches"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "status",
        "label",
        "pipeline",
        "limit",
        "offset",
    }
    items = paths["/api/batches/{batch_id}/items"]["get"]
    assert {p["name"] for p in items["parameters"]} == {
        "batch_id",
        "status",
        "key",
        "after",
        "limit",
    }
    schemas = spec["components"]["schemas"]
    assert set(schemas["BatchPublic"]["properties"]) >= {"pipeline", "label", "options"}
    assert "command" not in schemas["BatchPublic"]["properties"]
    assert set(schemas["UploadPublic"]["properties"]) >= {"pipeline", "label"}
    assert set(schemas["ItemPublic"]["properties"]) == {
        "id",
        "key",
        "payload",
        "status",
        "attempts",
        "line",
        "upload_id",
        "effect_id",
        "error",
        "result",
        "workflow_id",
        "updated_at",
        "temporal_url",
    }
    assert set(schemas["ItemHistoryPublic"]["properties"]) == ITEM_FIELDS
    assert set(schemas["AttemptPublic"]["properties"]) == ATTEMPT_FIELDS
    item = paths["/api/batches/{batch_id}/items/{key}"]["get"]
    assert set(item["responses"]) == {"200", "401", "403", "404", "422"}
    for path in ("/api/batches/{batch_id}/outputs", "/api/batches/{batch_id}/outputs/{name}"):
        operation = paths[path]["get"]
        assert set(operation["responses"]) == {"200", "401", "403", "404", "422"}, path
        assert operation["security"] == [{"HTTPBearer": []}], path
    outputs = paths["/api/batches/{batch_id}/outputs"]["get"]["responses"]["200"]
    assert outputs["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/OutputFilePublic"
    }
    download = paths["/api/batches/{batch_id}/outputs/{name}"]["get"]["responses"]["200"]
    assert set(download["content"]) == {"application/x-ndjson", "text/csv"}
    assert spec["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "description": "a viewer or an operator token",
            "scheme": "bearer",
        }
    }
    assert paths["/api/batches"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/healthz"]["get"]
    # Errors are {"detail": "..."} everywhere, validation errors included.
    for path in paths.values():
        for operation in path.values():
            for code, answer in operation["responses"].items():
                if code[0] in "45" and path is not paths["/readyz"]:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}, (code, operation)


def test_spec_describes_the_event_stream_and_its_refusals() -> None:
    spec = json.loads(openapi_json())
    events = spec["paths"]["/api/batches/{batch_id}/events"]["get"]
    assert set(events["responses"]) == {"200", "401", "403", "404", "422", "429", "503"}
    ok = events["responses"]["200"]
    assert set(ok["content"]) == {"text/event-stream"}  # was a JSON string
    assert "`error`" in ok["description"] and "`end`" in ok["description"]


def test_spec_names_the_statuses_the_guard_and_temporal_add() -> None:
    paths = json.loads(openapi_json())["paths"]
    cancel = paths["/api/batches/{batch_id}/cancel"]["post"]["responses"]
    assert {"401", "413", "422", "503"} <= set(cancel)
    for action in ("pause", "resume", "redrive"):
        assert "503" in paths[f"/api/batches/{{batch_id}}/{action}"]["post"]["responses"]
    assert "503" in paths["/api/batches/{batch_id}"]["get"]["responses"]
    listing = paths["/api/batches"]["get"]["parameters"]
    offset = next(p for p in listing if p["name"] == "offset")
    assert offset["schema"]["maximum"] == 2**63 - 1


def test_spec_documents_the_codec_server() -> None:
    paths = json.loads(openapi_json())["paths"]
    for path in ("/codec/decode", "/codec/encode"):
        route = paths[path]
        assert set(route) == {"post"}  # the CORS preflight stays out of the spec
        assert set(route["post"]["responses"]) == {"200", "400", "401", "413", "422"}
        body = route["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/CodecPayloads"}
