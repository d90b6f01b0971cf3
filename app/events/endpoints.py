"""Event ingestion (integrators) and a member's event history (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.auth.deps import AdminKey, EventsKey
from app.errors import responses
from app.events import service as events_service
from app.events.coalescer import Coalescer
from app.events.schemas import BatchIn, BatchResult, EventIn, EventOut, IngestResult
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.pagination import Page, PageDep
from app.users.endpoints import ExternalId

router = APIRouter(tags=["events"])


@router.post("/v1/events", response_model=IngestResult, responses=responses(401, 403, 409, 422))
async def ingest(body: EventIn, request: Request, _: EventsKey) -> IngestResult:
    """Record one event and apply what it earns; posting the same id again returns the first outcome."""
    # Evaluated in its own transaction, shared with the events that arrive meanwhile (group commit).
    coalescer: Coalescer = request.app.state.coalescer
    return await coalescer.ingest(body)


@router.post("/v1/events/batch", response_model=BatchResult, responses=responses(401, 403, 422))
async def ingest_batch(body: BatchIn, session: SessionDep, settings: SettingsDep, _: EventsKey) -> BatchResult:
    """Record up to 1,000 events (`{"events": [...]}` or a bare array); a result per item, a bad one changes nothing."""
    return await events_service.ingest_batch(session, settings, body.events)


@router.get(
    "/v1/admin/users/{external_id}/events",
    response_model=Page[EventOut],
    tags=["admin"],
    responses=responses(401, 403, 404),
)
async def user_events(
    external_id: ExternalId,
    session: SessionDep,
    page: PageDep,
    _: AdminKey,
    include_internal: Annotated[bool, Query(description="Also list badge.awarded / level.reached")] = False,
) -> Page[EventOut]:
    """A member's events, newest first (what integrators posted; Laurel's own award events on request)."""
    items, total = await events_service.history(session, external_id, page.limit, page.offset, include_internal)
    out = [EventOut.model_validate(e).model_copy(update={"outcome": outcome}) for e, outcome in items]
    return Page(items=out, total=total, limit=page.limit, offset=page.offset)
