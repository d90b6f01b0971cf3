"""Runs registered periodic jobs; with several replicas an advisory lock lets one run each job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.integrations.wechat.gateway import WeChatGateway
from app.kit import clock
from app.kit.dialect import try_lock_key

log = logging.getLogger("laurel.worker")

JobFn = Callable[[AsyncSession, Settings], Awaitable[int]]


@dataclass(frozen=True)
class JobContext:
    """What a job that runs several short transactions and talks to the outside world needs.

    `stopping` is set when the worker is asked to stop: a job that works batch after batch finishes the batch it
    has claimed (sends it and records the outcomes) and starts no other."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    wechat: WeChatGateway | None
    stopping: asyncio.Event | None = None

    @property
    def should_stop(self) -> bool:
        return self.stopping is not None and self.stopping.is_set()


ContextJobFn = Callable[[JobContext], Awaitable[int]]


@dataclass
class Job:
    name: str
    every_seconds: float
    fn: JobFn | None = None
    context_fn: ContextJobFn | None = None


JOBS: list[Job] = []


def register(name: str, every_seconds: float) -> Callable[[JobFn], JobFn]:
    def deco(fn: JobFn) -> JobFn:
        JOBS.append(Job(name, every_seconds, fn))
        return fn

    return deco


def register_with_context(name: str, every_seconds: float) -> Callable[[ContextJobFn], ContextJobFn]:
    """For dispatchers: the job gets a JobContext and opens its own transactions (sends happen between them)."""

    def deco(fn: ContextJobFn) -> ContextJobFn:
        JOBS.append(Job(name, every_seconds, context_fn=fn))
        return fn

    return deco


async def run_job_once(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, job: Job, wechat: WeChatGateway | None = None,
    stopping: asyncio.Event | None = None,
) -> int | None:
    """One transaction per run; None when another replica holds the job's lock.

    A context job runs while the lock's transaction stays open on its own connection (idle), so still only one
    replica runs it. SQLite has one process by design and BEGIN IMMEDIATE would block the job's own writes, so
    there the lock transaction is skipped.

    Runs in the program's time zone (kit.clock.program_zone), in the app's worker and in `laurel worker` alike:
    the payloads and webhook bodies a job writes show datetimes as the API does.
    """
    zone = clock.program_zone.set(settings.tz)
    try:
        return await _run_job(sessionmaker, settings, job, wechat, stopping)
    finally:
        clock.program_zone.reset(zone)


async def _run_job(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, job: Job, wechat: WeChatGateway | None,
    stopping: asyncio.Event | None,
) -> int | None:
    if job.context_fn is not None:
        context = JobContext(sessionmaker, settings, wechat, stopping)
        if settings.is_sqlite:
            return await job.context_fn(context)
        async with sessionmaker() as lock_session, lock_session.begin():
            if not await try_lock_key(lock_session, job.name):
                return None
            return await job.context_fn(context)
    assert job.fn is not None
    async with sessionmaker() as session, session.begin():
        if not await try_lock_key(session, job.name):
            return None
        return await job.fn(session, settings)


# How long stop() lets the runs in progress finish before cutting them off. A WeChat run cut off between its claim
# and its record leaves what WeChat accepted as `sending` (then `failed`) and never sends the rest it claimed.
STOP_GRACE_SECONDS = 20.0


@dataclass
class Worker:
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    wechat: WeChatGateway | None = None
    stop_grace_seconds: float = STOP_GRACE_SECONDS
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        for job in JOBS:
            self.tasks.append(asyncio.create_task(self._loop(job), name=f"job:{job.name}"))

    async def _loop(self, job: Job) -> None:
        while not self.stopping.is_set():
            try:
                await run_job_once(self.sessionmaker, self.settings, job, self.wechat, self.stopping)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job failed", extra={"fields": {"job": job.name}})
            # The pause between runs ends at once when the worker stops.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), job.every_seconds)

    async def stop(self) -> None:
        """Start no new run, let the runs in progress finish (up to stop_grace_seconds), then cancel the rest."""
        self.stopping.set()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=self.stop_grace_seconds)
            for t in late:
                log.warning("job cut off at shutdown", extra={"fields": {"job": t.get_name()}})
                t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def start_in_app(app: FastAPI) -> Worker:
    from app import jobs  # noqa: F401  (registers the jobs)

    worker = Worker(app.state.db.sessionmaker, app.state.settings, wechat=app.state.wechat)
    worker.start()
    return worker
