"""Chaos: many concurrent mixed requests for a few members, then the database's invariants (PostgreSQL).

Single events, overlapping batches, one id posted from several tasks at once, first events of new members, grants
and revokes (with and without reset_progress), points adjustments (with and without an idempotency key), city
moves, challenge joins and voucher code uploads, all at once; then every invariant is checked in SQL. The seed
fixes what is sent, not how it interleaves: CHAOS_SEED and CHAOS_ROUNDS (default 1 and 3) run it harder."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

BADGES = [
    {"key": "first-purchase", "name": "First Purchase", "criteria": [{"event": "purchase", "threshold": 1}],
     "points": 5},
    {"key": "big-spender", "name": "Big Spender", "criteria": [
        {"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 500}], "points": 20},
    {"key": "regular", "name": "Regular", "repeatable": True,
     "criteria": [{"event": "visit", "threshold": 3}], "points": 3},
    {"key": "explorer", "name": "Explorer", "criteria": [
        {"event": "visit", "aggregate": "count_distinct", "field": "store_id", "threshold": 3}], "points": 0},
    {"key": "collector", "name": "Collector", "criteria": [{"event": "badge.awarded", "threshold": 3}],
     "points": 10},
    {"key": "vip", "name": "VIP", "visibility": "invite_only", "criteria": [], "points": 15},
]


async def _setup(client: httpx.AsyncClient, h: dict[str, str]) -> None:
    for b in BADGES:
        r = await client.post("/v1/admin/badges", headers=h, json={**b, "status": "active"})
        assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/vouchers", headers=h, json={
        "key": "coffee", "name": "Coffee", "face_value": 25, "validity_days": 30, "codes": ["C0"]})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/challenges", headers=h, json={
        "key": "shop-visit", "title": "Shop and visit", "description": "", "icon": None,
        "steps": [{"title": "Buy", "description": "", "icon": None,
                   "criterion": {"event": "purchase", "threshold": 2}},
                  {"title": "Visit", "description": "", "icon": None,
                   "criterion": {"event": "visit", "threshold": 2}}],
        "eligibility": {}, "schedule": {"type": "one_time"},
        "rewards": {"points_per_step": 5, "bonus_points": 20, "voucher": "coffee"}})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/challenges/shop-visit/publish", headers=h)
    assert r.status_code == 200, r.text
    for key, period in (("points-all", "all_time"), ("points-week", "weekly")):
        r = await client.post("/v1/admin/leaderboards", headers=h, json={
            "key": key, "title": key, "metric": {"type": "points"}, "period": period, "status": "active"})
        assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/leaderboards", headers=h, json={
        "key": "visits-city", "title": "visits", "metric": {"type": "count", "event": "visit"}, "period": "all_time",
        "dimensions": ["city"], "status": "active"})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/leaderboards", headers=h, json={
        "key": "points-city", "title": "pc", "metric": {"type": "points"}, "period": "all_time",
        "dimensions": ["city"], "status": "active"})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/leaderboards", headers=h, json={
        "key": "badges-all", "title": "badges", "metric": {"type": "badges"}, "period": "all_time",
        "status": "active"})
    assert r.status_code == 201, r.text


async def test_chaos(app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "1"))
    rounds = int(os.environ.get("CHAOS_ROUNDS", "3"))
    rnd = random.Random(seed)
    h = admin_headers
    await _setup(client, h)
    members: list[tuple[str, dict[str, str]]] = []
    for i in range(4):
        openid = f"o-{uuid.uuid4().hex[:12]}"
        mh = await login(openid)
        ext = f"chaos-{i}-{uuid.uuid4().hex[:6]}"
        r = await client.put(f"/v1/users/{ext}", json={"openid": openid}, headers=h)
        assert r.status_code in (200, 201), r.text
        members.append((ext, mh))
    now = datetime.now(UTC)

    def event(ext: str) -> dict[str, Any]:
        kind = rnd.choice(["purchase", "visit", "visit", "post"])
        attrs: dict[str, Any] = {}
        if kind == "purchase":
            attrs = {"amount": rnd.choice([50, 120, 300, -40])}
        elif kind == "visit":
            attrs = {"store_id": f"S{rnd.randint(1, 4)}"}
        at = now - timedelta(seconds=rnd.randint(0, 600))
        return {"id": f"ev-{uuid.uuid4().hex}", "user_id": ext, "type": kind, "occurred_at": at.isoformat(),
                "attributes": attrs}

    transport = httpx.ASGITransport(app=app)
    bad: list[str] = []

    async def call(method: str, url: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
            r = await c.request(method, url, **kw)
        if r.status_code >= 500 or (r.status_code == 409 and r.json()["error"]["code"] not in (
                "badge_already_held", "insufficient_points", "idempotency_key_reused")):
            bad.append(f"{method} {url} {kw.get('json')} -> {r.status_code} {r.text[:400]}")
        return r

    for _round in range(rounds):
        fresh = [f"fresh-{_round}-{i}-{uuid.uuid4().hex[:4]}" for i in range(6)]
        pool = [event(ext) for ext, _ in members for _ in range(25)] + [event(f) for f in fresh for _ in range(4)]
        tasks: list[Any] = []
        for e in pool[:30]:
            tasks.append(call("POST", "/v1/events", json=e, headers=h))
        for _ in range(6):
            tasks.append(call("POST", "/v1/events/batch", json={"events": rnd.sample(pool, 50)}, headers=h))
        for e in rnd.sample(pool, 5):
            for _ in range(4):
                tasks.append(call("POST", "/v1/events", json=e, headers=h))
        for ext, mh in members:
            tasks.append(call("POST", "/v1/challenges/shop-visit/join", headers=mh))
            for _ in range(2):
                key = rnd.choice(["vip", "vip", "first-purchase", "regular"])
                tasks.append(call("POST", f"/v1/admin/users/{ext}/badges/{key}", json={"reason": "chaos"},
                                  headers=h))
                tasks.append(call("DELETE", f"/v1/admin/users/{ext}/badges/{key}", json={"reason": "chaos"},
                                  headers=h))
            for _ in range(2):
                tasks.append(call("PUT", f"/v1/users/{ext}", json={"city": rnd.choice(["SH", "BJ", None])},
                                  headers=h))
            tasks.append(call("DELETE", f"/v1/admin/users/{ext}/badges/first-purchase", headers=h,
                              json={"reason": "fraud", "reset_progress": rnd.random() < 0.5}))
            idem = f"k-{rnd.randint(1, 3)}"
            for _ in range(3):
                tasks.append(call("POST", f"/v1/admin/users/{ext}/points", headers=h,
                                  json={"amount": 7, "reason": "chaos", "idempotency_key": idem}))
            tasks.append(call("POST", f"/v1/admin/users/{ext}/points", headers=h,
                              json={"amount": rnd.choice([4, -3, 11]), "reason": "chaos2"}))
        if _round % 2:
            tasks.append(call("POST", "/v1/admin/vouchers/coffee/codes", headers=h,
                              json={"codes": [f"C{_round}", "C0"]}))
        rnd.shuffle(tasks)
        await asyncio.gather(*tasks)

    assert not bad, "\n".join(bad)
    async with app.state.db.sessionmaker() as s:
        async def rows(sql: str) -> list[Any]:
            return list((await s.execute(text(sql))).all())

        problems: dict[str, list[Any]] = {
            "balance != ledger": await rows(
                "select u.external_id, u.points, coalesce(sum(p.amount),0) from users u "
                "left join points_ledger p on p.user_id=u.id group by u.id "
                "having u.points <> coalesce(sum(p.amount),0)"),
            "ledger balance_after chain": await rows(
                "select * from (select user_id, id, balance_after, sum(amount) over (partition by user_id "
                "order by id) s from points_ledger) x where balance_after <> s"),
            "double source": await rows(
                "select source_type, source_id, count(*) from points_ledger group by 1,2 having count(*)>1"),
            "non-repeatable twice": await rows(
                "select ub.user_id, b.key, count(*) from user_badges ub join badges b on b.id=ub.badge_id "
                "where not b.repeatable group by 1,2 having count(*)>1"),
            "award outbox": await rows(
                "select ub.id, (select count(*) from outbox o where o.kind='badge.awarded' and "
                "(o.payload->>'award_id')::bigint=ub.id) n from user_badges ub) x where n<>1".replace(
                    "select ub.id", "select * from (select ub.id")),
            "award event": await rows(
                "select * from (select ub.id, (select count(*) from events e where e.type='badge.awarded' and "
                "e.source='laurel' and e.idempotency_key='laurel:badge.awarded:'||ub.id) n from user_badges ub) x "
                "where n<>1"),
            "ledger outbox": await rows(
                "select * from (select p.id, (select count(*) from outbox o where o.kind='points.credited' and "
                "(o.payload->>'entry_id')::bigint=p.id) n from points_ledger p) x where n<>1"),
            "level outbox": await rows(
                "select * from (select l.user_id, l.rank, (select count(*) from outbox o where o.kind='level.reached'"
                " and o.user_id=l.user_id and (o.payload->>'rank')::int=l.rank) n from user_levels l) x where n<>1"),
            "stray level outbox": await rows(
                "select user_id, payload->>'rank', count(*) from outbox where kind='level.reached' group by 1,2 "
                "having count(*)>1"),
            "stray award outbox": await rows(
                "select payload->>'award_id', count(*) from outbox where kind='badge.awarded' group by 1 "
                "having count(*)>1"),
            "event ids": await rows(
                "select idempotency_key, count(*) from events group by 1 having count(*)>1"),
            "board all_time": await rows(
                "select u.external_id, s.score, coalesce((select sum(amount) from points_ledger p where "
                "p.user_id=u.id),0) l from users u left join leaderboard_scores s on s.user_id=u.id and s.dim='' "
                "and s.board_id=(select id from leaderboards where key='points-all') where coalesce(s.score,0) <> "
                "coalesce((select sum(amount) from points_ledger p where p.user_id=u.id),0)"),
            "board badges": await rows(
                "select u.external_id, s.score, (select count(*) from user_badges ub where ub.user_id=u.id) from "
                "users u left join leaderboard_scores s on s.user_id=u.id and s.dim='' and s.board_id=(select id "
                "from leaderboards where key='badges-all') where coalesce(s.score,0) <> "
                "(select count(*) from user_badges ub where ub.user_id=u.id)"),
            "counts vs scores": await rows(
                "select * from (select board_id, period, dim, score, count(*) n from leaderboard_scores "
                "group by 1,2,3,4) s full join (select board_id, period, dim, key, n from leaderboard_score_counts "
                "where level=0) c using (board_id, period, dim) where s.score=c.key and s.n<>c.n"),
            "counts without scores": await rows(
                "select c.* from leaderboard_score_counts c where level=0 and n <> (select count(*) from "
                "leaderboard_scores s where s.board_id=c.board_id and s.period=c.period and s.dim=c.dim and "
                "s.score=c.key)"),
            "scores without counts": await rows(
                "select s.* from leaderboard_scores s where not exists (select 1 from leaderboard_score_counts c "
                "where c.level=0 and s.board_id=c.board_id and s.period=c.period and s.dim=c.dim and "
                "s.score=c.key)"),
            "fine counts": await rows(
                "select * from leaderboard_score_counts f where level=1 and n <> (select coalesce(sum(n),0) from "
                "leaderboard_score_counts e where e.level=0 and e.parent=f.key and e.board_id=f.board_id and "
                "e.period=f.period and e.dim=f.dim)"),
            "city views": await rows(
                "select u.external_id, u.city, b.key, s.dim, s.score, w.score from users u "
                "join leaderboard_scores s on s.user_id=u.id and s.dim like 'city:%' "
                "join leaderboards b on b.id=s.board_id "
                "left join leaderboard_scores w on w.user_id=u.id and w.board_id=s.board_id and w.period=s.period "
                "and w.dim='' where s.dim <> 'city:'||coalesce(u.city,'') or s.score <> coalesce(w.score,0)"),
            "city view missing": await rows(
                "select u.external_id, u.city, b.key from users u join leaderboard_scores w on w.user_id=u.id "
                "and w.dim='' join leaderboards b on b.id=w.board_id and b.dimensions::text like '%city%' "
                "where u.city is not null and not exists (select 1 from leaderboard_scores s where s.user_id=u.id "
                "and s.board_id=w.board_id and s.period=w.period and s.dim='city:'||u.city)"),
            "collector counter": await rows(
                "select u.external_id, (select coalesce(sum((rc.state->>'count')::int),0) from rule_counters rc where "
                "rc.user_id=u.id and rc.scope like 'b'||c.id||':%'), (select count(*) from user_badges ub where "
                "ub.user_id=u.id) from users u cross join badges c where c.key='collector' and not exists (select 1 "
                "from user_badges x where x.user_id=u.id and x.badge_id=c.id) and (select coalesce(sum("
                "(rc.state->>'count')::int),0) from rule_counters rc where rc.user_id=u.id and rc.scope like "
                "'b'||c.id||':%') <> (select count(*) from user_badges ub where ub.user_id=u.id)"),
            "step credits": await rows(
                "select p.id, p.steps_done, p.status, (select count(*) from points_ledger l where "
                "l.source_type='challenge_step' and l.source_id like p.id||':%'), (select count(*) from points_ledger"
                " l where l.source_type='challenge_bonus' and l.source_id=p.id::text), (select count(*) from outbox o"
                " where o.kind='challenge.completed' and (o.payload->>'participation_id')::bigint=p.id) "
                "from challenge_participations p where p.steps_done <> (select count(*) from points_ledger l where "
                "l.source_type='challenge_step' and l.source_id like p.id||':%') or (p.status='completed') <> "
                "exists (select 1 from points_ledger l where l.source_type='challenge_bonus' and "
                "l.source_id=p.id::text) or (select count(*) from outbox o where o.kind='challenge.completed' and "
                "(o.payload->>'participation_id')::bigint=p.id) <> (case when p.status='completed' then 1 else 0 end)"),
            "board weekly": await rows(
                "select u.external_id, w.score, a.score from users u join leaderboard_scores a on a.user_id=u.id "
                "and a.dim='' and a.board_id=(select id from leaderboards where key='points-all') left join "
                "leaderboard_scores w on w.user_id=u.id and w.dim='' and w.board_id=(select id from leaderboards "
                "where key='points-week') where coalesce(w.score,0) <> a.score"),
            "vouchers owed": await rows(
                "select p.id, (select count(*) from member_vouchers m where m.source_type='challenge' and "
                "m.source_id=p.id::text) n from challenge_participations p where (select count(*) from "
                "member_vouchers m where m.source_type='challenge' and m.source_id=p.id::text) <> "
                "(case when p.status='completed' then 1 else 0 end)"),
            # A pending voucher (the pool ran dry: more completions than codes) has no code yet, so only vouchers
            # holding one are matched with the pool; "pending with codes" checks the pending ones.
            "codes": await rows(
                "select c.code, c.issued_at, m.id from voucher_codes c full join (select * from member_vouchers "
                "where code is not null) m on m.voucher_id=c.voucher_id and m.code=c.code "
                "where (c.issued_at is null) <> (m.id is null)"),
            "voucher status": await rows(
                "select id, status, code from member_vouchers where (status = 'pending') <> (code is null)"),
            "pending with codes": await rows(
                "select m.id from member_vouchers m where m.status='pending' and exists (select 1 from "
                "voucher_codes c where c.voucher_id=m.voucher_id and c.issued_at is null)"),
            "challenge credits": await rows(
                "select source_type, source_id, count(*) from points_ledger where source_type like 'challenge%' "
                "group by 1,2 having count(*)>1"),
        }
    tz = app.state.settings.tz
    if (now - timedelta(minutes=15)).astimezone(tz).isocalendar()[:2] != datetime.now(tz).isocalendar()[:2]:
        problems.pop("board weekly")  # the events straddle a week boundary: the weekly board holds only part
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, problems
