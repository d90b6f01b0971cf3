"""Ingestion: store the event once, then let the engine run decide what it earns — one transaction."""

from __future__ import annotations

from collections.abc import Callable, Container
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.badges import rules_cache
from app.config import Settings
from app.errors import Conflict, LaurelError, NotFound
from app.events import pg_fast
from app.events import repository as events_repo
from app.events.engine import EngineRun, Outcome, reads
from app.events.record import EventRecord, MemberRecord
from app.events.schemas import BatchItemResult, BatchResult, EventIn, IngestResult
from app.events.store import discard_store, store_for
from app.kit.clock import utcnow
from app.kit.dialect import dialect_name
from app.kit.handlers import is_reference_gone, is_retryable, is_unreachable, validation_details
from app.kit.schemas import printable
from app.models import Event, User
from app.rules import evaluator as ev
from app.rules.criteria import Criterion, FixedWindow
from app.users import repository as users_repo


async def ingest(
    session: AsyncSession, settings: Settings, item: EventIn, user: User | MemberRecord | None = None
) -> IngestResult:
    """Store and evaluate one event; a known id returns the first outcome and changes nothing."""
    now = utcnow()
    fields: dict[str, Any] = {
        "idempotency_key": item.id, "type": item.type, "source": item.source, "occurred_at": item.occurred_at,
        "received_at": now, "attributes": item.attributes.as_dict(),
    }
    member: User | MemberRecord
    if user is None and dialect_name(session) == "postgresql":
        # Member found or created and locked, and the event claimed: one round trip.
        member, event_id = await pg_fast.claim(
            session, item.user_id, item.id, item.type, item.source, item.occurred_at, now, fields["attributes"]
        )
        run = EngineRun(session, settings, member)
        event = None if event_id is None else EventRecord(id=event_id, user_id=member.id, **fields)
    else:
        if user is None:
            member = await users_repo.lock_or_create(session, item.user_id)
            run = EngineRun(session, settings, member)
        else:
            member = user
            run = await EngineRun.begin(session, settings, user)
        event = await events_repo.record(session, user_id=member.id, **fields)
    if event is None:
        return await _duplicate(session, item, member)
    keys = await _counter_keys(session, settings, [(member.id, item.type, item.occurred_at)])
    if keys:
        # Badges listen to this type: the member's awards, levels and the counters this event and the award
        # events it may cause can read, in one round trip.
        await run.store.load_member_state(member.id, keys)
    result = await _evaluate(run, event, item)
    await run.flush()
    return result


async def _evaluate(run: EngineRun, event: EventRecord, item: EventIn) -> IngestResult:
    """Run the engine on a stored event; the outcome is kept (buffered) for replies to duplicates."""
    run.outcome = Outcome()
    await run.process(event)
    outcome = run.outcome.to_json()
    result = IngestResult(
        id=item.id, event_id=event.id, user_id=item.user_id, status="accepted", duplicate=False, **outcome
    )
    if any(outcome.values()):
        # An event that changed nothing needs no second write.
        run.store.set_outcome(event.id, result.model_dump(mode="json", exclude={"status", "duplicate"}))
    return result


async def _duplicate(session: AsyncSession, item: EventIn, user: User | MemberRecord) -> IngestResult:
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
    """A batch item's validation errors: the API's usual shape (kit.handlers), without `loc`."""
    return [{k: d[k] for k in ("field", "message", "type")} for d in validation_details(list(exc.errors()))]


def _rejected(index: int, key: str | None, code: str, message: str, details: Any = None) -> BatchItemResult:
    return BatchItemResult(
        index=index, id=key, status="rejected", error={"code": code, "message": message, "details": details}
    )


async def ingest_batch(session: AsyncSession, settings: Settings, raw_items: list[Any]) -> BatchResult:
    """Validate every item (any JSON value: one that is not an object is refused alone), then evaluate the valid
    ones set-based; a bad item is reported and leaves nothing.

    Should the database refuse a value of some item, the set-based attempt is undone and the batch is
    evaluated again item by item, each in its own savepoint, so only that item is refused.
    """
    results: list[BatchItemResult | None] = [None] * len(raw_items)
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(raw_items):
        try:
            valid.append((index, EventIn.model_validate(raw)))
        except ValidationError as exc:
            key = printable(raw["id"]) if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            results[index] = _rejected(index, key, "validation_error", "Invalid event", _errors(exc))
    await _ingest_valid(session, settings, valid, results)
    final = [r for r in results if r is not None]
    return BatchResult(
        accepted=sum(r.status == "accepted" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )


async def ingest_group(session: AsyncSession, settings: Settings, items: list[EventIn]) -> list[BatchItemResult]:
    """Validated single events evaluated together (see events/coalescer.py); a result per item, in order."""
    if not items:
        return []
    results: list[BatchItemResult | None] = [None] * len(items)
    valid = sorted(enumerate(items), key=lambda pair: (pair[1].user_id, pair[0]))
    # No savepoint (two round trips saved): should the database refuse something, the whole transaction
    # is dropped and the coalescer evaluates each event again alone.
    await _batch_set_based(session, settings, valid, results, group=True)
    return [r for r in results if r is not None]


async def _ingest_valid(
    session: AsyncSession, settings: Settings, valid: list[tuple[int, EventIn]], results: list[BatchItemResult | None]
) -> None:
    # Each member's events keep their posted order.
    valid.sort(key=lambda pair: (pair[1].user_id, pair[0]))
    try:
        async with session.begin_nested():
            await _batch_set_based(session, settings, valid, results)
    except DBAPIError as exc:
        discard_store(session)
        if is_retryable(exc) or is_unreachable(exc) or is_reference_gone(exc):
            # The whole transaction is lost (replayed), the database cannot serve it (503), or a definition cached
            # here was deleted (replayed after the caches are dropped): no item's fault.
            raise
        for index, _item in valid:
            results[index] = None
        await _batch_item_by_item(session, settings, valid, results)


SYNTHETIC_TYPES = ("badge.awarded", "level.reached")


async def _batch_set_based(
    session: AsyncSession,
    settings: Settings,
    valid: list[tuple[int, EventIn]],
    results: list[BatchItemResult | None],
    group: bool = False,
) -> None:
    """One statement per table for the whole batch: members, events, then the engine's reads and writes."""
    first: dict[str, int] = {}  # idempotency key → index of its first item in this batch, in posted order
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for index, item in sorted(valid, key=lambda pair: pair[0]):
        if item.id in first:
            continue
        first[item.id] = index
        rows.append({
            "idempotency_key": item.id, "user_id": item.user_id, "type": item.type, "source": item.source,
            "occurred_at": item.occurred_at, "received_at": now, "attributes": item.attributes.as_dict(),
        })
    users: dict[str, User | MemberRecord]
    external_ids = [item.user_id for _, item in valid]
    pg = dialect_name(session) == "postgresql"
    store = store_for(session)
    # Ids drawn ahead for the rows events cause: a batch's events mostly cause nothing (a quarter is plenty,
    # the pool doubles when it runs dry); a group of single events is small and each refill a round trip.
    draw = (2 * len(rows) if group else len(rows) // 4) + 8
    if pg:
        # Members locked, events stored and the first ids drawn in one round trip; the rows name their members
        # by external id.
        members, stored, ids, created = await pg_fast.claim_many(session, external_ids, rows, now, draw)
        store.ids.supply(ids)
        users = dict(members)
    else:
        locked, created = await users_repo.lock_many(session, external_ids)
        users = dict(locked)
    for row in rows:
        row["user_id"] = users[row["user_id"]].id
    if not pg:
        stored = await events_repo.record_many(session, rows)
    # A member this batch created for items none of which was stored (each a key already used for another member)
    # is removed again: nothing of a refused item stays.
    kept = {item.user_id for index, item in valid if item.id in stored and first[item.id] == index}
    if orphans := [users[e].id for e in created if e not in kept]:
        await users_repo.delete_new(session, orphans)
    store.created(users[e].id for e in created if e in kept)
    known = await events_repo.by_keys(session, [k for k in first if k not in stored])
    touched = [(users[item.user_id].id, item.type, item.occurred_at) for _i, item in valid if item.id in stored]
    await store.prefetch([u.id for u in users.values()])
    await store.load_counters(await _counter_keys(session, settings, touched, held=store.held_now))
    runs: dict[int, EngineRun] = {}
    by_key = {row["idempotency_key"]: row for row in rows}
    for index, item in valid:
        user = users[item.user_id]
        if first[item.id] != index:
            continue  # a repeat inside this batch: answered below from its first item
        if item.id in stored:
            run = runs.get(user.id) or runs.setdefault(user.id, EngineRun(session, settings, user))
            event = EventRecord(id=stored[item.id], **by_key[item.id])
            outcome = await _evaluate(run, event, item)
            results[index] = BatchItemResult(index=index, id=item.id, status="accepted", result=outcome)
        else:
            results[index] = _replay(index, item, user, known.get(item.id))
    for index, item in valid:
        head = results[first[item.id]]
        if first[item.id] == index or head is None:
            continue
        if item.id not in stored:
            # Stored before this batch: the id is its member's, so each repeat answers as it would alone (a
            # duplicate for that member even after another member's item was refused for the id).
            results[index] = _replay(index, item, users[item.user_id], known.get(item.id))
        elif head.status == "rejected" or head.result is None:
            results[index] = head.model_copy(update={"index": index})
        elif head.result.user_id != item.user_id:
            results[index] = _rejected(index, item.id, "idempotency_key_reused",
                                       "This event id was already used for another member", {"id": item.id})
        else:
            again = head.result.model_copy(update={"status": "duplicate", "duplicate": True})
            results[index] = BatchItemResult(index=index, id=item.id, status="duplicate", result=again)
    await store.flush()


def _replay(
    index: int, item: EventIn, user: User | MemberRecord, existing: events_repo.Stored | None
) -> BatchItemResult:
    if existing is None:  # pragma: no cover - the conflicting row is committed before we can see the conflict
        return _rejected(index, item.id, "event_in_flight", "Event id is being processed; retry")
    if existing.user_id != user.id:
        return _rejected(index, item.id, "idempotency_key_reused",
                         "This event id was already used for another member", {"id": item.id})
    outcome = dict(existing.outcome or {})
    outcome.update(id=item.id, event_id=existing.id, user_id=item.user_id, status="duplicate", duplicate=True)
    return BatchItemResult(index=index, id=item.id, status="duplicate", result=IngestResult.model_validate(outcome))


async def _counter_keys(
    session: AsyncSession,
    settings: Settings,
    events: list[tuple[int, str, datetime]],
    held: Callable[[int], Container[int]] | None = None,
) -> set[tuple[int, str, str]]:
    """Counters the events may read: of every criterion of the badges their types can move (and of those
    counting the award events they may cause), in the buckets around each event's instant. With `held`
    (member → badge ids held), badges a member already holds for good are left out. A superset is fine; a
    miss costs a query."""
    rules = await rules_cache.auto_awardable(session)
    synthetic = [b for t in SYNTHETIC_TYPES for b in rules.for_type(t)]
    tz = settings.tz
    memo: dict[tuple[int, Any], tuple[str, ...]] = {}
    keys: set[tuple[int, str, str]] = set()
    for uid, type_, at in set(events):
        badges = rules.for_type(type_)
        if held is not None:
            mine = held(uid)
            badges = tuple(b for b in badges if b.repeatable or b.id not in mine)
        if not badges:
            continue  # nothing this event can award, so it causes no award events either
        for b in (*badges, *synthetic):
            for scope, c in b.criteria:
                keys.update((uid, scope, bucket) for bucket in _buckets(c, at, tz, memo))
    return keys


def _buckets(c: Criterion, at: datetime, tz: Any, memo: dict[tuple[int, Any], tuple[str, ...]]) -> tuple[str, ...]:
    """The buckets an event at `at` updates and reads for `c` (a late event's later rolling days included); the
    same for a whole local day unless the window is fixed (whose edges may fall inside a day)."""
    when: Any = at if isinstance(c.window, FixedWindow) else ev.local_date(at, tz)
    found = memo.get((id(c), when))
    if found is None:
        bucket = ev.bucket_for(c, at, tz)
        found = tuple(dict.fromkeys([*([bucket] if bucket is not None else []), *reads(c, at, tz)]))
        memo[(id(c), when)] = found
    return found


async def _batch_item_by_item(
    session: AsyncSession, settings: Settings, valid: list[tuple[int, EventIn]], results: list[BatchItemResult | None]
) -> None:
    """The slow, careful path: each item in its own savepoint, so a value the database refuses costs one item,
    the member its event would have created included. Members are locked in the batch statements' order (the
    database's), so this path does not deadlock with them. An id repeated in the batch goes to its first-posted
    item, as on the set-based path: the repeats run last, which may take a member out of that order (a deadlock
    there is detected by PostgreSQL and the request retried)."""
    rank = {e: i for i, e in enumerate(await users_repo.in_lock_order(session, [it.user_id for _, it in valid]))}
    first: dict[str, int] = {}
    for index, item in sorted(valid, key=lambda pair: pair[0]):
        first.setdefault(item.id, index)
    ordered = sorted(valid, key=lambda pair: (first[pair[1].id] != pair[0], rank[pair[1].user_id], pair[0]))
    for index, item in ordered:
        try:
            async with session.begin_nested():
                outcome = await ingest(session, settings, item)
            results[index] = BatchItemResult(index=index, id=item.id, status=outcome.status, result=outcome)
        except LaurelError as exc:
            discard_store(session)
            results[index] = _rejected(index, item.id, exc.code, exc.message, exc.details)
        except DBAPIError as exc:
            discard_store(session)
            if is_retryable(exc) or is_unreachable(exc) or is_reference_gone(exc):
                raise
            results[index] = _rejected(index, item.id, "invalid_value", "The database refused a value of this event")


async def history(
    session: AsyncSession, external_id: str, limit: int, offset: int, include_internal: bool = False
) -> tuple[list[tuple[Event, dict[str, Any] | None]], int]:
    user = await users_repo.by_external_id(session, external_id)
    if user is None:
        raise NotFound("Member not found", code="user_not_found")
    return await events_repo.page_for_user(session, user.id, limit, offset, include_internal)
