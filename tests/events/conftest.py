"""Fixtures shared by the ingestion tests."""

from __future__ import annotations

from typing import Any

import pytest

from app.events import service as events_service


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the shared groups evaluated."""
    sizes: list[int] = []
    real = events_service.ingest_group

    async def spy(session: Any, settings: Any, items: list[Any]) -> Any:
        sizes.append(len(items))
        return await real(session, settings, items)

    monkeypatch.setattr(events_service, "ingest_group", spy)
    return sizes
