"""Parsed criteria per badge version, so the hot path does not re-validate JSON on every event."""

from __future__ import annotations

from datetime import datetime

from app.models import Badge
from app.rules.criteria import Criterion, criterion_key

_CACHE: dict[tuple[int, datetime], list[tuple[str, Criterion]]] = {}


def parsed(badge: Badge) -> list[tuple[str, Criterion]]:
    """(counter scope, criterion) per criterion; the scope changes when the criterion changes."""
    cache_key = (badge.id, badge.updated_at)
    hit = _CACHE.get(cache_key)
    if hit is None:
        if len(_CACHE) > 10_000:
            _CACHE.clear()
        crits = [Criterion.model_validate(raw) for raw in badge.criteria]
        hit = [(f"b{badge.id}:{criterion_key(c)[:24]}", c) for c in crits]
        _CACHE[cache_key] = hit
    return hit
