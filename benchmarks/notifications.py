"""Fault injection: 10,000 badge notifications through fan-out and the WeChat dispatcher while the fake WeChat
fails 30 % of sends at random (errcode -1 or a dropped connection). Every message must arrive exactly once.

Run: `python -m benchmarks.notifications` (PostgreSQL on 127.0.0.1). Retry delays are skipped with a virtual
clock (the dispatcher takes `now`), so the time measured is the real work: claims, sends, records, retries.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from app.config import Settings
from app.integrations.wechat import WeChatGateway
from app.kit.db import Database
from app.models import NotificationTemplate, OutboxMessage, SubscriptionCredit, User, WeChatDelivery
from app.notifications.dispatcher import dispatch_wechat_once
from app.notifications.fanout import fanout_all
from benchmarks.common import fresh_database, machine
from tests.fakes.wechat_server import DEFAULT_APP_ID, DEFAULT_APP_SECRET, fake_wechat_server

N = int(os.environ.get("BENCH_NOTIFICATIONS", "10000"))
FAILURE_RATE = 0.30
TEMPLATE = "tmpl-badge"


async def _seed(db: Database, n: int) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as s, s.begin():
        await s.execute(insert(User), [
            {"external_id": f"B{i}", "openid": f"o-bench-{i}", "segments": [], "preferences": {}, "points": 0,
             "created_at": now, "updated_at": now} for i in range(n)
        ])
        ids = list((await s.execute(select(User.id).order_by(User.id))).scalars())
        s.add(NotificationTemplate(kind="badge_unlocked", template_id=TEMPLATE, page="pages/badges/index",
                                   fields={"thing1": "{badge_name}", "time2": "{earned_at}"},
                                   miniprogram_state="formal", lang="zh_CN", enabled=True))
        await s.execute(insert(SubscriptionCredit), [
            {"user_id": uid, "template_id": TEMPLATE, "credits": 1, "last_result": "accept", "updated_at": now}
            for uid in ids
        ])
        await s.execute(insert(OutboxMessage), [
            {"kind": "badge.awarded", "user_id": uid, "created_at": now,
             "payload": {"user_id": f"B{i}", "badge": "first-visit", "badge_name": "首次到店", "award_id": i,
                         "points": 0, "source": "rule", "awarded_at": now.isoformat()}}
            for i, uid in enumerate(ids)
        ])


async def run(n: int = N) -> dict[str, float]:
    url = await asyncio.to_thread(fresh_database, "laurel_bench_notifications")  # alembic runs its own loop
    with fake_wechat_server(seed=20261124) as fake:
        settings = Settings(
            env="test", database_url=url, wechat_app_id=DEFAULT_APP_ID, wechat_app_secret=DEFAULT_APP_SECRET,
            wechat_api_base_url=fake.base_url, wechat_timeout_seconds=5, quiet_hours="", worker_enabled=False,
            wechat_dispatch_concurrency=8, log_level="WARNING",  # retries as configured by default
        )
        db = Database(settings)
        gateway = WeChatGateway(DEFAULT_APP_ID, DEFAULT_APP_SECRET, fake.base_url, timeout=5, max_workers=8)
        try:
            await _seed(db, n)
            fake.failure_rate = FAILURE_RATE
            started = time.perf_counter()
            await fanout_all(db.sessionmaker, settings)
            fanned = time.perf_counter()
            clock = datetime.now(UTC)
            calls = 0
            while True:
                made = await dispatch_wechat_once(db.sessionmaker, settings, gateway, limit=500, now=clock)
                calls += made
                if made:
                    continue
                async with db.sessionmaker() as s:
                    due = (await s.execute(select(func.min(WeChatDelivery.next_attempt_at))
                                           .where(WeChatDelivery.status == "pending"))).scalar()
                if due is None:
                    break
                clock = max(clock, due)  # skip the backoff wait instead of sleeping through it
            elapsed = time.perf_counter() - started
            async with db.sessionmaker() as s:
                statuses = dict((await s.execute(
                    select(WeChatDelivery.status, func.count()).group_by(WeChatDelivery.status))).all())
                left = (await s.execute(select(func.sum(SubscriptionCredit.credits)))).scalar()
            touched = [m["touser"] for m in fake.sent]
            assert len(touched) == n, f"{len(touched)} messages arrived for {n} notifications"
            assert len(set(touched)) == n, "a member received a message twice"
            assert statuses == {"sent": n}, statuses
            assert left == 0, f"{left} credits left over"
            print(machine())
            print(f"{n} notifications, fake WeChat failing {FAILURE_RATE:.0%} of sends at random")
            print(f"  fan-out (outbox → inbox + deliveries): {fanned - started:6.2f} s")
            print(f"  delivered exactly once: {n} messages to {len(set(touched))} members in {elapsed:6.2f} s total "
                  f"({n / elapsed:,.0f} msg/s); {calls} WeChat calls ({calls - n} retried failures)")
            return {"seconds": elapsed, "calls": calls, "messages": n}
        finally:
            gateway.close()
            await db.dispose()


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
