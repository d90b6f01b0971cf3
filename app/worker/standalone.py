"""`laurel worker`: the same jobs as the in-app runner, in their own process."""

from __future__ import annotations

import asyncio
import signal

from app import jobs  # noqa: F401  (registers the jobs)
from app.config import get_settings
from app.integrations.wechat.gateway import WeChatGateway
from app.kit.db import Database
from app.worker.runner import Worker


async def run_forever() -> None:
    settings = get_settings()
    db = Database(settings)
    wechat = WeChatGateway(
        app_id=settings.wechat_app_id,
        app_secret=settings.wechat_app_secret,
        base_url=settings.wechat_api_base_url,
        timeout=settings.wechat_timeout_seconds,
    )
    worker = Worker(db.sessionmaker, settings, wechat=wechat)
    worker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await worker.stop()
    wechat.close()
    await db.dispose()
