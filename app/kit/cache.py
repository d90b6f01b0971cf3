"""Small per-process caches of rarely-changing definitions (badge rules, active boards, challenge events).

Each value is kept per database (engine) for a few seconds: a change made through this process
invalidates at once; other replicas see it within the TTL. Ingestion reads these on every event, so a
cache hit saves a query per event.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import ClassVar, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class DefinitionCache(Generic[T]):
    _all: ClassVar[list[DefinitionCache[object]]] = []

    def __init__(self, load: Callable[[AsyncSession], Awaitable[T]], ttl_seconds: float = 2.0) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._values: dict[int, tuple[float, T]] = {}
        self._generation = 0  # bumped by invalidate: a load begun before it must not be stored after it
        DefinitionCache._all.append(self)  # type: ignore[arg-type]

    async def get(self, session: AsyncSession) -> T:
        # `session.bind` is the engine the session was made for; get_bind() costs ~30 µs, too much per event.
        key = id(session.bind if session.bind is not None else session.get_bind())
        now = time.monotonic()
        hit = self._values.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        generation = self._generation
        value = await self._load(session)
        if generation == self._generation:
            self._values[key] = (now, value)
        return value

    def invalidate(self) -> None:
        self._generation += 1
        self._values.clear()

    def invalidate_with(self, session: AsyncSession) -> None:
        """A change in `session`'s transaction: drop the cached value now and again once it commits, so that no
        request of this process caches the old definition in between and keeps it for the TTL."""
        self.invalidate()
        event.listen(session.sync_session, "after_commit", lambda _s: self.invalidate(), once=True)

    @classmethod
    def invalidate_all(cls) -> None:
        for cache in cls._all:
            cache.invalidate()
