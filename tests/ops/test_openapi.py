"""The committed OpenAPI document is what the app serves."""

from __future__ import annotations

from pathlib import Path

from app.openapi_export import render

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_is_current() -> None:
    assert COMMITTED.exists(), "openapi/openapi.json is missing: run `make openapi`"
    assert COMMITTED.read_text() == render(), "openapi/openapi.json is stale: run `make openapi`"
