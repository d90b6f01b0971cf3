"""The committed OpenAPI document is what the app serves."""

from __future__ import annotations

from pathlib import Path

from app.openapi_export import render

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_is_current() -> None:
    assert COMMITTED.exists(), "openapi/openapi.json is missing: run `make openapi`"
    assert COMMITTED.read_text() == render(), "openapi/openapi.json is stale: run `make openapi`"


def test_endpoints_answering_two_success_statuses_document_both() -> None:
    # Generated clients reject a status their schema does not list: an upsert's 201 and a repeat join's 200.
    import json

    paths = json.loads(render())["paths"]
    assert {"200", "201"} <= set(paths["/v1/users/{external_id}"]["put"]["responses"])
    assert {"200", "201"} <= set(paths["/v1/challenges/{key}/join"]["post"]["responses"])
