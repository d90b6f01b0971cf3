"""Event rows and rule-counter state (all SQL of the ingestion path)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.record import EventRecord
from app.events.schemas import RESERVED_SOURCE
from app.kit.dialect import insert_ignore, insert_once
from app.models import Event, EventOutcome, RuleCounter

INTERNAL_SOURCE = RESERVED_SOURCE  # award and level events the engine records itself


async def record(
    session: AsyncSession,
    *,
    idempotency_key: str,
    user_id: int,
    type: str,
    source: str,
    occurred_at: datetime,
    received_at: datetime,
    attributes: dict[str, Any],
) -> EventRecord | None:
    """Idempotent insert: the stored event (not attached to the session) when this call stored it, None when
    the key was already known."""
    fields: dict[str, Any] = {
        "idempotency_key": idempotency_key,
        "user_id": user_id,
        "type": type,
        "source": source,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "attributes": attributes,
    }
    event_id = await insert_once(session, Event, ["idempotency_key"], fields)
    return None if event_id is None else EventRecord(id=event_id, **fields)


async def record_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Idempotent insert of many events in one statement: idempotency key → id of the rows this call stored."""
    if not rows:
        return {}
    table = Event.__table__
    stmt = insert_ignore(session, table, ["idempotency_key"]).returning(  # type: ignore[arg-type]
        table.c.id, table.c.idempotency_key
    )
    result = await session.execute(stmt, list(rows))
    return {key: event_id for event_id, key in result.all()}


@dataclass(frozen=True, slots=True)
class Stored:
    """An event already stored under a key, and the outcome kept for replies to its duplicates."""

    id: int
    user_id: int
    outcome: dict[str, Any] | None


_STORED = select(Event.idempotency_key, Event.id, Event.user_id, EventOutcome.outcome).outerjoin(
    EventOutcome, EventOutcome.event_id == Event.id
)


async def by_keys(session: AsyncSession, keys: Sequence[str]) -> dict[str, Stored]:
    if not keys:
        return {}
    rows = await session.execute(_STORED.where(Event.idempotency_key.in_(list(keys))))
    return {r[0]: Stored(r[1], r[2], r[3]) for r in rows}


async def by_key(session: AsyncSession, key: str) -> Stored | None:
    return (await by_keys(session, [key])).get(key)


def _record(row: Event) -> EventRecord:
    return EventRecord(
        id=row.id, idempotency_key=row.idempotency_key, user_id=row.user_id, type=row.type, source=row.source,
        occurred_at=row.occurred_at, received_at=row.received_at, attributes=row.attributes or {},
    )


async def record_by_key(session: AsyncSession, key: str) -> EventRecord | None:
    """The stored event under a key, as the engine's listeners read events."""
    row = (await session.execute(select(Event).where(Event.idempotency_key == key))).scalar_one_or_none()
    return None if row is None else _record(row)


async def records_by_keys(session: AsyncSession, keys: Sequence[str]) -> list[EventRecord]:
    if not keys:
        return []
    rows = await session.execute(select(Event).where(Event.idempotency_key.in_(keys)).order_by(Event.id))
    return [_record(row) for row in rows.scalars()]


async def page_for_user(
    session: AsyncSession, user_id: int, limit: int, offset: int, include_internal: bool = False
) -> tuple[list[tuple[Event, dict[str, Any] | None]], int]:
    """A member's events with their outcomes, newest first; Laurel's own award events only when asked."""
    cond = Event.user_id == user_id
    if not include_internal:
        cond = cond & (Event.source != INTERNAL_SOURCE)
    rows = await session.execute(
        select(Event, EventOutcome.outcome)
        .outerjoin(EventOutcome, EventOutcome.event_id == Event.id)
        .where(cond)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = (await session.execute(select(func.count()).select_from(Event).where(cond))).scalar_one()
    return [(r[0], r[1]) for r in rows], total


async def load_counters(
    session: AsyncSession, user_id: int, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """States for the wanted (scope, bucket) pairs, in one query."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    cond = tuple_(RuleCounter.scope, RuleCounter.bucket).in_(wanted)
    rows = await session.execute(
        select(RuleCounter.scope, RuleCounter.bucket, RuleCounter.state).where(RuleCounter.user_id == user_id, cond)
    )
    return {(r.scope, r.bucket): r.state for r in rows}


async def history_of_types(
    session: AsyncSession, types: Sequence[str], since: datetime, until: datetime
) -> AsyncIterator[tuple[int, str, datetime, dict[str, Any]]]:
    """(user_id, type, occurred_at, attributes) of the events of some types that occurred in [since, until), member
    by member and in the order they arrived (the order the engine evaluated them), streamed: the (user_id, id)
    index gives that order without a sort, and only a chunk of rows is held at a time."""
    stmt = (
        select(Event.user_id, Event.type, Event.occurred_at, Event.attributes)
        .where(Event.type.in_(types), Event.occurred_at >= since, Event.occurred_at < until)
        .order_by(Event.user_id, Event.id)
        .execution_options(yield_per=2000)
    )
    result = await session.stream(stmt)
    async for chunk in result.partitions():
        for r in chunk:
            yield int(r[0]), str(r[1]), r[2], r[3] or {}
