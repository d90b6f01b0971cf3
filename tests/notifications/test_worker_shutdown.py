"""Stopping the worker (a deploy, SIGTERM) while a job runs lets that run finish instead of cutting it off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

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


async def test_stopping_during_a_fanout_backlog_ends_after_the_batch_in_progress(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fanout job drained the whole outbox in one run: with a backlog, stopping waited the whole grace period
    and then cut the run off mid-batch anyway. It stops after the batch it is on, as the dispatchers do."""
    from app import jobs  # noqa: F401  (registers the jobs)
    from app.notifications import fanout

    batches = {"n": 0}
    busy = asyncio.Event()

    async def endless_backlog(*_args: Any, **_kwargs: Any) -> int:
        batches["n"] += 1
        if batches["n"] == 2:
            busy.set()
        await asyncio.sleep(0.05)
        return 100

    monkeypatch.setattr(fanout, "fanout_once", endless_backlog)
    job = next(j for j in runner.JOBS if j.name == "notifications.fanout")
    worker = runner.Worker(kit.app.state.db.sessionmaker, kit.settings, stop_grace_seconds=5.0)
    task = asyncio.create_task(worker._loop(job))
    worker.tasks.append(task)
    await asyncio.wait_for(busy.wait(), 5)
    started = asyncio.get_running_loop().time()
    await worker.stop()
    assert asyncio.get_running_loop().time() - started < 2.0
    assert not task.cancelled()
