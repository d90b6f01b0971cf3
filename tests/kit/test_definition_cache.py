"""The per-process definition cache must not keep an answer loaded before an invalidation."""

from __future__ import annotations

import asyncio
from typing import Any

from app.kit.cache import DefinitionCache


class _Session:
    bind = object()


async def test_a_load_that_began_before_an_invalidation_is_not_kept() -> None:
    release = asyncio.Event()
    answers = iter([False, True])

    async def load(_session: Any) -> bool:
        await release.wait()
        return next(answers)

    cache: DefinitionCache[bool] = DefinitionCache(load, ttl_seconds=60)
    session: Any = _Session()
    stale = asyncio.create_task(cache.get(session))
    await asyncio.sleep(0)
    cache.invalidate()  # e.g. a challenge was published while the old answer was being read
    release.set()
    assert await stale is False  # the caller that asked before gets what it read...
    assert await cache.get(session) is True  # ...but the next one reads again
