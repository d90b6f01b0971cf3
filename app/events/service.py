"""Ingestion: store the event once, then let the engine run decide what it earns — one transaction."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, LaurelError, NotFound
from app.events import repository as events_repo
from app.events.engine import EngineRun
from app.events.schemas import BatchItemResult, BatchResult, EventIn, IngestResult
from app.kit.clock import utcnow
from app.kit.handlers import is_retryable
from app.models import Event, User
from app.users import repository as users_repo


async def ingest(session: AsyncSession, settings: Settings, item: EventIn, user: User | None = None) -> IngestResult:
    """Store and evaluate one event; a known id returns the first outcome and changes nothing."""
    if user is None:
        # One statement finds, locks and refreshes the member (created first when unknown).
        user = await users_repo.lock_by_external_id(session, item.user_id)
        if user is None:
            await users_repo.ensure_external(session, item.user_id)
            user = await users_repo.lock_by_external_id(session, item.user_id)
            assert user is not None
        run = EngineRun(session, settings, user)
    else:
        run = await EngineRun.begin(session, settings, user)
    event = await events_repo.record(
        session,
        key=item.id,
        user_id=user.id,
        type_=item.type,
        source=item.source,
        occurred_at=item.occurred_at,
        received_at=utcnow(),
        attributes=item.attributes.as_dict(),
    )
    if event is None:
        return await _duplicate(session, item, user)
    await run.process(event)
    outcome = run.outcome.to_json()
    result = IngestResult(
        id=item.id, event_id=event.id, user_id=item.user_id, status="accepted", duplicate=False, **outcome
    )
    if any(outcome.values()):
        # Kept for replies to duplicates; an event that changed nothing needs no second write.
        stored = result.model_dump(mode="json", exclude={"status", "duplicate"})
        await events_repo.set_outcome(session, event.id, stored)
    return result


async def _duplicate(session: AsyncSession, item: EventIn, user: User) -> IngestResult:
    existing = await events_repo.by_key(session, item.id)
    if existing is None:  # pragma: no cover - the conflicting row is committed before we can see the conflict
        raise Conflict("Event id is being processed; retry", code="event_in_flight")
    if existing.user_id != user.id:
        raise Conflict(
            "This event id was already used for another member", code="idempotency_key_reused", details={"id": item.id}
        )
    outcome = dict(existing.outcome or {})
    outcome.update(id=item.id, event_id=existing.id, user_id=item.user_id, status="duplicate", duplicate=True)
    return IngestResult.model_validate(outcome)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()]


async def ingest_batch(session: AsyncSession, settings: Settings, raw_items: list[dict[str, Any]]) -> BatchResult:
    """Each item in its own savepoint: a bad item is reported and leaves nothing behind.

    Members are locked in external-id order (stable within a member) so concurrent batches touching
    the same members cannot deadlock, and each member's events keep their posted order.
    """
    results: list[BatchItemResult | None] = [None] * len(raw_items)
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(raw_items):
        try:
            valid.append((index, EventIn.model_validate(raw)))
        except ValidationError as exc:
            key = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            results[index] = BatchItemResult(
                index=index,
                id=key,
                status="rejected",
                error={"code": "validation_error", "message": "Invalid event", "details": _errors(exc)},
            )
    valid.sort(key=lambda pair: (pair[1].user_id, pair[0]))
    users: dict[str, User] = {}
    for external_id in sorted({item.user_id for _, item in valid}):
        users[external_id] = await users_repo.ensure_external(session, external_id)
    for index, item in valid:
        try:
            async with session.begin_nested():
                outcome = await ingest(session, settings, item, users[item.user_id])
            results[index] = BatchItemResult(index=index, id=item.id, status=outcome.status, result=outcome)
        except LaurelError as exc:
            results[index] = BatchItemResult(
                index=index,
                id=item.id,
                status="rejected",
                error={"code": exc.code, "message": exc.message, "details": exc.details},
            )
        except DBAPIError as exc:
            if is_retryable(exc):
                raise  # the whole transaction is lost; the request is replayed
            # The savepoint kept the rest of the batch; only this item is refused.
            results[index] = BatchItemResult(
                index=index,
                id=item.id,
                status="rejected",
                error={
                    "code": "invalid_value",
                    "message": "The database refused a value of this event",
                    "details": None,
                },
            )
    final = [r for r in results if r is not None]
    return BatchResult(
        accepted=sum(r.status == "accepted" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )


async def history(
    session: AsyncSession, external_id: str, limit: int, offset: int, include_internal: bool = False
) -> tuple[list[Event], int]:
    user = await users_repo.by_external_id(session, external_id)
    if user is None:
        raise NotFound("Member not found", code="user_not_found")
    return await events_repo.page_for_user(session, user.id, limit, offset, include_internal)
