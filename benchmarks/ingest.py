"""Ingestion benchmark: Laurel over HTTP on PostgreSQL with 20 active badges, against pgbench.

Run with `make bench` or `python -m benchmarks.ingest`. BENCH_SECONDS (default 10) sets each run's length.
pgbench runs one transaction that inserts an event row and updates a counter row — the floor of what an
ingestion costs in the database — at the same concurrency, before and after Laurel; the mean is the anchor.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from benchmarks.common import (
    ADMIN_KEY,
    PG_HOST,
    ROOT,
    RawClient,
    RawResponse,
    Stats,
    closed_loop,
    fresh_database,
    live_server,
    machine,
    psql,
)

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
DB = "laurel_bench_ingest"
HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}  # setting up (admin); events go with an integrator's key
POSTER: dict[str, str] = {}
MEMBERS = 5000
HISTORY_MEMBERS = 200
HISTORY_EVENTS = 20_000  # what "members with history" have behind them: 100 events each

BADGES: list[dict[str, Any]] = [
    {"key": "first-purchase", "criteria": [{"event": "purchase", "threshold": 1}], "points": 5},
    {"key": "tenth-order", "criteria": [{"event": "purchase", "threshold": 10}], "points": 20},
    {"key": "fiftieth-order", "criteria": [{"event": "purchase", "threshold": 50}], "points": 50},
    {
        "key": "big-spender",
        "criteria": [
            {
                "event": "purchase",
                "aggregate": "sum",
                "field": "amount",
                "threshold": 1000,
                "window": {"type": "rolling", "days": 7},
            }
        ],
    },
    {
        "key": "monthly-spender",
        "criteria": [
            {
                "event": "purchase",
                "aggregate": "sum",
                "field": "amount",
                "threshold": 3000,
                "window": {"type": "calendar", "unit": "month"},
            }
        ],
    },
    {
        "key": "shoe-lover",
        "criteria": [
            {"event": "purchase", "where": [{"field": "category", "op": "eq", "value": "shoes"}], "threshold": 3}
        ],
    },
    {"key": "first-visit", "criteria": [{"event": "visit", "threshold": 1}], "points": 5},
    {
        "key": "store-explorer",
        "criteria": [
            {
                "event": "visit",
                "aggregate": "count_distinct",
                "field": "store_id",
                "threshold": 3,
                "window": {"type": "calendar", "unit": "month"},
            }
        ],
    },
    {
        "key": "city-hopper",
        "criteria": [{"event": "visit", "aggregate": "count_distinct", "field": "city", "threshold": 3}],
    },
    {"key": "regular", "criteria": [{"event": "visit", "threshold": 20}]},
    {
        "key": "check-in-streak",
        "criteria": [
            {
                "event": "check_in",
                "aggregate": "streak",
                "threshold": 7,
                "grace": 1,
                "window": {"type": "calendar", "unit": "day"},
            }
        ],
    },
    {
        "key": "weekly-check-in",
        "criteria": [{"event": "check_in", "threshold": 5, "window": {"type": "calendar", "unit": "week"}}],
    },
    {"key": "first-post", "criteria": [{"event": "post", "threshold": 1}], "points": 5},
    {"key": "storyteller", "criteria": [{"event": "post", "threshold": 10}]},
    {"key": "first-comment", "criteria": [{"event": "comment", "threshold": 1}]},
    {"key": "conversationalist", "criteria": [{"event": "comment", "threshold": 25}]},
    {"key": "first-referral", "criteria": [{"event": "referral", "threshold": 1}], "points": 20},
    {
        "key": "festival-shopper",
        "criteria": [
            {
                "event": "purchase",
                "threshold": 1,
                "window": {"type": "fixed", "start": "2026-01-01T00:00:00+08:00", "end": "2027-03-01T00:00:00+08:00"},
            }
        ],
    },
    {"key": "collector", "criteria": [{"event": "badge.awarded", "threshold": 5}], "points": 50},
    {
        "key": "all-rounder",
        "criteria": [
            {"event": "purchase", "threshold": 2},
            {"event": "visit", "threshold": 2},
            {"event": "post", "threshold": 2},
        ],
    },
]
TYPES = ["purchase", "purchase", "visit", "visit", "check_in", "post", "comment", "referral"]
CITIES = ["Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu"]


def random_event(rng: random.Random) -> dict[str, Any]:
    type_ = rng.choice(TYPES)
    at = datetime.now(UTC) - timedelta(minutes=rng.randint(1, 60 * 24 * 20))
    attrs: dict[str, Any] = {}
    if type_ == "purchase":
        attrs = {
            "amount": round(rng.uniform(10, 800), 2),
            "currency": "CNY",
            "category": rng.choice(["shoes", "bags", "coats"]),
            "store_id": f"S{rng.randint(1, 40)}",
        }
    elif type_ == "visit":
        attrs = {"store_id": f"S{rng.randint(1, 40)}", "city": rng.choice(CITIES)}
    return {
        "id": uuid.uuid4().hex,
        "user_id": f"M{rng.randint(1, MEMBERS)}",
        "type": type_,
        "occurred_at": at.isoformat(),
        "source": "bench",
        "attributes": attrs,
    }


def pgbench(clients: int, seconds: float) -> float:
    script = (
        "\\set uid random(1, 10000)\n"
        "BEGIN;\n"
        "INSERT INTO bench_events(user_id, payload) VALUES (:uid::bigint, '{\"amount\": 10}');\n"
        "INSERT INTO bench_counters(user_id, n) VALUES (:uid::bigint, 1) "
        "ON CONFLICT (user_id) DO UPDATE SET n = bench_counters.n + 1;\n"
        "END;\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        [
            "pgbench",
            "-h",
            PG_HOST,
            "-U",
            "postgres",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(int(seconds)),
            "-f",
            f.name,
            DB,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(f.name)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    return float(m.group(1)) if m else 0.0


def settle() -> None:
    """VACUUM (ANALYZE) between scenarios, as autovacuum would: PostgreSQL on the benchmark machine may run
    with autovacuum off (the one the README's figures come from does), and a scenario should not pay for the
    dead rows of the ones before it."""
    if psql("SHOW autovacuum") == "off":
        psql("VACUUM (ANALYZE)", DB)


async def seed_badges(base: str) -> None:
    """The 20 badges, and a stored `events:write` key for posting, as an integrator's POS would have."""
    async with httpx.AsyncClient(base_url=base, headers=HEADERS) as c:
        r = await c.post("/v1/admin/api-keys", json={"name": "bench-pos", "scopes": ["events:write"]})
        r.raise_for_status()
        POSTER["Authorization"] = f"Bearer {r.json()['key']}"
        for b in BADGES:
            r = await c.post("/v1/admin/badges", json={"name": b["key"], "status": "active", **b})
            r.raise_for_status()


async def single(
    base: str, clients: int, seconds: float, label: str, replay_share: float = 0.0, members: int | None = None
) -> Stats:
    rng = random.Random(clients)
    sent: list[dict[str, Any]] = []

    async def request(client: RawClient, _wid: int, _i: int) -> RawResponse:
        if sent and rng.random() < replay_share:
            body = rng.choice(sent)
        else:
            body = random_event(rng)
            if members is not None:
                body["user_id"] = f"W{rng.randint(1, members)}"
            sent.append(body)
        return await client.post(f"{base}/v1/events", json=body, headers=POSTER)

    return await closed_loop(label, clients, seconds, request)


BATCHES_PER_SECOND_CEILING = 15  # per client, above anything measured here: bodies prepared ahead


def batch_body(rng: random.Random, members: int | None) -> bytes:
    events = [random_event(rng) for _ in range(1000)]
    if members is not None:
        for e in events:
            e["user_id"] = f"W{rng.randint(1, members)}"
    return json.dumps({"events": events}).encode()


async def batches(base: str, clients: int, seconds: float, members: int | None = None) -> Stats:
    """`clients` closed loops posting 1,000-event batches. The bodies are generated and encoded before the clock
    starts, and only the reply's leading `accepted` count is read: with one client, building 1,000 random events
    and decoding the full reply took ~20 ms per batch of the loop, a fifth of what was being measured."""
    rng = random.Random(99 + (members or 0))
    ready = [batch_body(rng, members) for _ in range(clients * math.ceil(seconds * BATCHES_PER_SECOND_CEILING))]
    latencies: list[float] = []
    count = 0
    headers = {**POSTER, "content-type": "application/json"}
    async with httpx.AsyncClient(timeout=120) as client:

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                body = ready.pop() if ready else batch_body(rng, members)
                t0 = time.perf_counter()
                r = await client.post(f"{base}/v1/events/batch", content=body, headers=headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                head = re.match(rb'\{"accepted":(\d+),', r.content)
                count += int(head.group(1)) if head else r.json()["accepted"]

        stop = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    who = "" if members is None else ", members with history"
    return Stats(f"batch of 1,000{who}, {clients} client(s) (events/s)", count, elapsed, latencies)


async def give_history(base: str) -> None:
    """HISTORY_EVENTS events for the W1…W{HISTORY_MEMBERS} members; seeded, so the same events in every run
    (their times relative to the run's start)."""
    rng = random.Random(2026)
    async with httpx.AsyncClient(timeout=120) as client:
        for _ in range(HISTORY_EVENTS // 1000):
            events = [random_event(rng) for _ in range(1000)]
            for e in events:
                e["user_id"] = f"W{rng.randint(1, HISTORY_MEMBERS)}"
            r = await client.post(f"{base}/v1/events/batch", json={"events": events}, headers=POSTER)
            r.raise_for_status()
            assert r.json()["rejected"] == 0, r.text[:300]


CHALLENGE_STEPS = [
    {"title": "Buy", "criterion": {"event": "purchase", "threshold": 3}},
    {
        "title": "Visit",
        "criterion": {"event": "visit", "aggregate": "count_distinct", "field": "store_id", "threshold": 5},
    },
    {"title": "Spend", "criterion": {"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 1000}},
    {"title": "Post", "criterion": {"event": "post", "threshold": 3}},
    {"title": "Check in", "criterion": {"event": "check_in", "threshold": 5}},
]


async def seed_challenges(base: str, db: str) -> None:
    """20 published challenges (3 steps each, on the bench's event types), every member joined to all."""
    async with httpx.AsyncClient(base_url=base, headers=HEADERS) as c:
        for i in range(20):
            steps = [CHALLENGE_STEPS[(i + k) % len(CHALLENGE_STEPS)] for k in range(3)]
            body = {
                "key": f"bench-{i}",
                "title": f"Bench challenge {i}",
                "description": "",
                "steps": steps,
                "rewards": {"points_per_step": 2, "bonus_points": 10, "badge": None, "voucher": None},
            }
            (await c.post("/v1/admin/challenges", json=body)).raise_for_status()
            (await c.post(f"/v1/admin/challenges/bench-{i}/publish")).raise_for_status()
    empty = json.dumps([{"state": {"count": 0, "total": "0", "distinct": [], "periods": []}, "done_at": None}] * 3)
    psql(
        f"INSERT INTO users (external_id, segments, preferences, points, created_at, updated_at) "
        f"SELECT 'M' || g, '[]', '{{}}', 0, now(), now() FROM generate_series(1, {MEMBERS}) g "
        f"ON CONFLICT (external_id) DO NOTHING",
        db,
    )
    psql(
        "INSERT INTO challenge_participations (challenge_id, instance_key, user_id, status, joined_at, steps_done, "
        f"progress) SELECT c.id, 'once', u.id, 'active', now() - interval '30 days', 0, '{empty}'::jsonb "
        "FROM challenges c CROSS JOIN users u ON CONFLICT DO NOTHING",
        db,
    )


async def main() -> dict[str, Any]:
    url = await asyncio.to_thread(fresh_database, DB)
    psql(
        "CREATE TABLE bench_events (id bigserial PRIMARY KEY, user_id bigint NOT NULL, payload jsonb NOT NULL, "
        "received_at timestamptz NOT NULL DEFAULT now())",
        DB,
    )
    psql("CREATE TABLE bench_counters (user_id bigint PRIMARY KEY, n bigint NOT NULL)", DB)
    print(f"machine: {machine()}")
    print(f"command: python -m benchmarks.ingest (BENCH_SECONDS={SECONDS:g}); 20 active badges, {MEMBERS} members\n")
    results: dict[str, Any] = {"machine": machine(), "seconds": SECONDS, "runs": []}
    with live_server(url) as base:
        await seed_badges(base)
        await single(base, 8, min(3.0, SECONDS), "warm-up")
        # The HTTP ceiling of this stack on this machine: a bare GET through the same client and server.
        for clients in (8, 32):

            async def healthz(client: RawClient, _w: int, _i: int) -> RawResponse:
                return await client.get(f"{base}/healthz")

            ceiling = await closed_loop(
                f"GET /healthz (HTTP ceiling), {clients} clients", clients, SECONDS / 2, healthz
            )
            print(ceiling.line())
            results["runs"].append(
                {
                    "kind": "healthz",
                    "clients": clients,
                    "rate": ceiling.rate,
                    "p50_ms": ceiling.pct(50),
                    "p99_ms": ceiling.pct(99),
                }
            )
        anchors: dict[int, float] = {}
        for clients in (1, 8, 32):
            before = pgbench(clients, SECONDS)
            settle()
            stats = await single(base, clients, SECONDS, f"single events, {clients} client(s)")
            after = pgbench(clients, SECONDS)
            settle()
            anchor = anchors[clients] = (before + after) / 2
            drift = abs(before - after) / anchor * 100 if anchor else 0
            print(stats.line())
            print(
                f"{'':<44} pgbench {anchor:10.1f} tx/s (before {before:.0f}, after {after:.0f}, drift {drift:.0f}%)"
                f" → Laurel = {stats.rate / anchor * 100:.1f}% of pgbench"
            )
            results["runs"].append(
                {
                    "kind": "single",
                    "clients": clients,
                    "rate": stats.rate,
                    "p50_ms": stats.pct(50),
                    "p99_ms": stats.pct(99),
                    "pgbench_tps": anchor,
                    "pgbench_drift_pct": drift,
                }
            )
        replay = await single(base, 8, SECONDS, "single events, 8 clients, ~10% replays", replay_share=0.1)
        print(replay.line())
        settle()
        # Steady state: 200 members who already hold most of the easy badges. Their history is a fixed number of
        # events (not a warm-up of fixed length), so every run, on a fast or a slow machine, starts from it.
        await give_history(base)
        settle()
        for clients in (1, 8, 32):
            stats = await single(
                base, clients, SECONDS, f"single events, members with history, {clients} client(s)",
                members=HISTORY_MEMBERS,
            )
            print(stats.line())
            anchor = anchors[clients]
            print(f"{'':<44} pgbench {anchor:10.1f} tx/s (measured above) → Laurel = {stats.rate / anchor * 100:.1f}%")
            results["runs"].append(
                {
                    "kind": "single-steady",
                    "clients": clients,
                    "rate": stats.rate,
                    "p50_ms": stats.pct(50),
                    "p99_ms": stats.pct(99),
                    "pgbench_tps": anchor,
                }
            )
        settle()
        for clients in (1, 2):
            stats = await batches(base, clients, SECONDS, members=HISTORY_MEMBERS)
            print(stats.line())
            results["runs"].append(
                {
                    "kind": "batch-steady",
                    "clients": clients,
                    "rate": stats.rate,
                    "p50_ms": stats.pct(50),
                    "p99_ms": stats.pct(99),
                }
            )
        settle()
        for clients in (1, 2):
            stats = await batches(base, clients, SECONDS)
            print(stats.line())
            results["runs"].append(
                {
                    "kind": "batch",
                    "clients": clients,
                    "rate": stats.rate,
                    "p50_ms": stats.pct(50),
                    "p99_ms": stats.pct(99),
                }
            )
        await seed_challenges(base, DB)
        settle()
        print(f"\n20 published challenges, {MEMBERS} members joined to each:")
        for clients in (1, 8, 32):
            stats = await single(base, clients, SECONDS, f"single events + challenges, {clients} client(s)")
            print(stats.line())
            results["runs"].append(
                {
                    "kind": "single+challenges",
                    "clients": clients,
                    "rate": stats.rate,
                    "p50_ms": stats.pct(50),
                    "p99_ms": stats.pct(99),
                }
            )
        stats = await batches(base, 1, SECONDS)
        stats.label = "batch of 1,000 + challenges, 1 client (events/s)"
        print(stats.line())
        results["runs"].append(
            {
                "kind": "batch+challenges",
                "clients": 1,
                "rate": stats.rate,
                "p50_ms": stats.pct(50),
                "p99_ms": stats.pct(99),
            }
        )
    # Replays must not double-count: every stored ledger credit has a distinct source.
    dupes = psql("SELECT count(*) - count(DISTINCT (source_type, source_id)) FROM points_ledger", DB)
    balance_ok = psql(
        "SELECT bool_and(u.points = COALESCE(l.s, 0)) FROM users u LEFT JOIN "
        "(SELECT user_id, sum(amount) s FROM points_ledger GROUP BY user_id) l ON l.user_id = u.id",
        DB,
    )
    print(f"\nconsistency: duplicate ledger sources = {dupes}; balances equal ledger sums = {balance_ok}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / f"ingest-{int(time.time())}.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    asyncio.run(main())
