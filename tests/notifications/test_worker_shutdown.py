"""Stopping the worker (a deploy, SIGTERM) while a job runs lets that run finish instead of cutting it off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.worker import runner
from tests.api import badge, event
from tests.fakes.wechat_server import FakeWeChat
from tests.notifications.conftest import Kit


async def test_stopping_mid_send_records_the_sends_and_sends_what_was_claimed(kit: Kit, wechat: FakeWeChat) -> None:
    """Cancelled between its claim and its record, a WeChat run left messages WeChat had accepted in `sending`
    (later marked failed) and the bundles it had claimed but not sent yet were never sent (their credits spent)."""
    from app import jobs  # noqa: F401  (registers the jobs)

    await kit.template()
    await badge(kit.client, "first-visit", [{"event": "visit", "threshold": 1}])
    members = [await kit.member() for _ in range(2)]
    for m in members:
        await kit.credit(m)
        await event(kit.client, m.external_id, "visit", datetime.now(UTC))
    await kit.fanout()
    job = next(j for j in runner.JOBS if j.name == "notifications.wechat")
    settings = kit.settings.model_copy(update={"wechat_dispatch_concurrency": 1})
    worker = runner.Worker(kit.app.state.db.sessionmaker, settings, wechat=kit.app.state.wechat)
    wechat.delay_seconds = 0.3
    worker.tasks.append(asyncio.create_task(worker._loop(job)))
    for _ in range(200):  # until the first message is on its way
        if any("subscribe" in path for _, path, _, _ in list(wechat.requests)):
            break
        await asyncio.sleep(0.01)
    await worker.stop()
    await asyncio.sleep(1)  # a send cut off on our side is still answered by WeChat
    assert len(wechat.sent) == 2
    assert [d.status for d in await kit.deliveries()] == ["sent", "sent"]
