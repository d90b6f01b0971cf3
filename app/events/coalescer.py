"""Group commit for single events: concurrent `POST /v1/events` requests share one set-based transaction.

Why: a single event spends most of its time in fixed per-transaction work (locking, claiming, reading the
member's state, one flush, the commit). When requests arrive faster than one transaction takes, the ones
that queued meanwhile are evaluated together by the batch path (one statement per table for all of them),
so throughput grows with load instead of latency. An idle service evaluates each event alone, on the
single-event path, with no added wait.

Each caller still gets its own outcome or error. Semantics do not change: a member's events are never in
two groups in flight at once (see `_take`), the batch path keeps each member's events in arrival order and
is exactly-once by the same constraints and locks. If the shared transaction fails for a reason other
than a lost race, each event is evaluated again alone, in its own transaction, so one event's failure is
never another's (a lost race there is that caller's to retry: RetryConflictsMiddleware replays the request).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.scopes import Scope
from app.config import Settings
from app.errors import Conflict, Forbidden, InvalidInput, LaurelError, Unauthorized
from app.events import service as events_service
from app.events.schemas import BatchItemResult, EventIn, IngestResult
from app.kit.cache import DefinitionCache
from app.kit.db import Database, commit
from app.kit.handlers import is_reference_gone, is_retryable

log = logging.getLogger("laurel.events")

MAX_GROUP = 200  # events per shared transaction
MIN_EXTRA_GROUP = 8  # queued events that justify a second group beside one in flight

_ERRORS: dict[str, type[LaurelError]] = {
    "idempotency_key_reused": Conflict,
    "event_in_flight": Conflict,
    "invalid_value": InvalidInput,
    "validation_error": InvalidInput,
}


@dataclass
class _Waiter:
    item: EventIn
    key: str | None = None  # a stored API key, checked in the transaction that records the event
    future: asyncio.Future[IngestResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Coalescer:
    """One per app instance (process): queues single events and drains them in groups."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._queue: list[_Waiter] = []
        self._drainers: set[asyncio.Task[None]] = set()
        self._running = 0  # drainers that have not yet left their loop
        self._busy: set[str] = set()  # members with events in a group now in flight
        # Shared transactions in flight at once: while one waits on PostgreSQL (round trips, the commit's WAL
        # flush) the next is evaluated in Python. SQLite has one writer, so one at a time there.
        self._pipeline = 1 if settings.database_url.startswith("sqlite") else settings.ingest_pipeline

    async def ingest(self, item: EventIn, key: str | None = None) -> IngestResult:
        """The event's outcome. With `key`, a stored API key the caller presented: it is checked (revoked?
        `events:write`?) in the same transaction, one query for the whole group, and a refusal raises."""
        waiter = _Waiter(item, key)
        self._queue.append(waiter)
        # A further group starts beside the one in flight only once enough has queued to make it worth a
        # transaction: started at once, it would take each newcomer alone (four round trips per event).
        if self._running == 0 or (self._running < self._pipeline and len(self._queue) >= MIN_EXTRA_GROUP):
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._drainers.add(task)  # a strong reference until it ends
            task.add_done_callback(self._drainers.discard)
        return await waiter.future

    async def _drain(self) -> None:
        """Take what has queued, evaluate it as one group, repeat until nothing is left to take."""
        try:
            while group := self._take():
                members = {w.item.user_id for w in group}
                self._busy |= members  # before any await: no other drainer may take these members' events
                try:
                    await self._run(group)
                except BaseException as exc:  # never leave a caller waiting, whatever happened
                    for w in group:
                        _settle(w, error=exc if isinstance(exc, Exception) else RuntimeError("ingestion stopped"))
                    raise
                finally:
                    self._busy -= members
        finally:
            # Synchronously with leaving the loop: an event queued after this starts a drainer of its own.
            self._running -= 1

    def _take(self) -> list[_Waiter]:
        """The next group: queued events of members with no group in flight, oldest first. A member's later
        events wait for the group holding its earlier ones (whose drainer takes them next), so each member's
        events are still evaluated in arrival order with several groups in flight."""
        group: list[_Waiter] = []
        rest: list[_Waiter] = []
        for w in self._queue:
            (group if len(group) < MAX_GROUP and w.item.user_id not in self._busy else rest).append(w)
        self._queue = rest
        return group

    async def close(self) -> None:
        """Let the groups in flight finish (at shutdown, before the database goes away)."""
        while self._drainers:
            await asyncio.gather(*self._drainers, return_exceptions=True)

    async def _run(self, group: list[_Waiter]) -> None:
        try:
            if len(group) == 1:
                await self._alone(group[0])
                return
            async with self.db.sessionmaker() as session:
                group = await _authorised(session, group)
                results = await events_service.ingest_group(session, self.settings, [w.item for w in group])
                await commit(session)  # also a key's throttled last_used_at
        except Exception as exc:
            # A lost race (deadlock) as much as anything else: each event alone, in its own transaction, so
            # each caller gets its own outcome (a race lost there again is that caller's to retry).
            if isinstance(exc, DBAPIError) and is_reference_gone(exc):
                DefinitionCache.invalidate_all()  # a definition cached here was deleted: not again, one by one
            elif not (isinstance(exc, DBAPIError) and is_retryable(exc)):
                log.warning("shared ingestion transaction failed; evaluating its events one by one", exc_info=True)
            for w in group:
                await self._alone(w)
            return
        for w, result in zip(group, results, strict=True):
            if result.result is not None:
                _settle(w, result=result.result)
            else:
                _settle(w, error=_error_of(result))

    async def _alone(self, w: _Waiter) -> None:
        """One event in its own transaction, on the single-event path."""
        try:
            async with self.db.sessionmaker() as session:
                if not await _authorised(session, [w]):
                    return
                result = await events_service.ingest(session, self.settings, w.item)
                await commit(session)
        except Exception as exc:
            _settle(w, error=exc)
        else:
            _settle(w, result=result)


async def _authorised(session: AsyncSession, group: list[_Waiter]) -> list[_Waiter]:
    """The waiters whose stored key (if any) is valid with `events:write`; the others are settled as refused."""
    keys = {w.key for w in group if w.key is not None}
    if not keys:
        return group
    principals = await auth_service.verify_stored_keys(session, keys)
    allowed: list[_Waiter] = []
    for w in group:
        principal = principals.get(w.key) if w.key is not None else None
        if w.key is None or (principal is not None and principal.allows(Scope.events_write.value)):
            allowed.append(w)
        elif principal is None:
            _settle(w, error=Unauthorized("Invalid or revoked API key", code="invalid_api_key"))
        else:
            _settle(w, error=Forbidden("API key lacks the 'events:write' scope", code="insufficient_scope"))
    return allowed


def _settle(w: _Waiter, *, result: IngestResult | None = None, error: BaseException | None = None) -> None:
    if w.future.done():  # the caller went away (cancelled)
        return
    if error is not None:
        w.future.set_exception(error)
    else:
        w.future.set_result(result)  # type: ignore[arg-type]


def _error_of(item: BatchItemResult) -> LaurelError:
    error: dict[str, Any] = item.error or {}
    code = str(error.get("code", "bad_request"))
    cls = _ERRORS.get(code, LaurelError)
    return cls(str(error.get("message", "The event was refused")), code=code, details=error.get("details"))
