"""Deterministic OpenAPI rendering, shared by `make openapi` and the staleness test."""

from __future__ import annotations

import json

from app.config import Settings


def render() -> str:
    from app.main import create_app

    app = create_app(Settings(worker_enabled=False))
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
