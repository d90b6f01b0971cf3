"""`laurel worker`: the same jobs as the in-app runner, in their own process."""

from __future__ import annotations

import asyncio
import signal

from app import jobs  # noqa: F401  (registers the jobs)
from app.config import get_settings
from app.kit.db import Database
from app.worker.runner import Worker


async def run_forever() -> None:
    settings = get_settings()
    db = Database(settings)
    worker = Worker(db.sessionmaker, settings)
    worker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await worker.stop()
    await db.dispose()
