"""In-process batch measurement: 1,000-event batches through the app (httpx's ASGI transport, no HTTP server)
on PostgreSQL with the ingestion benchmark's 20 badges, for comparing two versions of the code on a noisy
machine (run each a few times, alternating) and for profiling the engine.

    python -m benchmarks.inprocess               # fresh members: most events award, credit and reach a level
    BENCH_MODE=history python -m benchmarks.inprocess   # 200 members with 20,000 events behind them
    BENCH_PROFILE=/tmp/batch.prof python -m benchmarks.inprocess   # cProfile of the measured batches

It prints the batches' wall time and this process's CPU time per batch (the client's work included, which is
small next to the server's: bodies are encoded before the clock starts).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import random
import time

import httpx

from benchmarks.common import ADMIN_KEY, fresh_database
from benchmarks.ingest import BADGES, HISTORY_EVENTS, HISTORY_MEMBERS, random_event

DB = "laurel_bench_inprocess"
BATCHES = int(os.environ.get("BENCH_BATCHES", "6"))
MODE = os.environ.get("BENCH_MODE", "fresh")


def _batch(rng: random.Random, history: bool) -> list[dict[str, object]]:
    events = [random_event(rng) for _ in range(1000)]
    if history:
        for e in events:
            e["user_id"] = f"W{rng.randint(1, HISTORY_MEMBERS)}"
    return events


async def run(url: str) -> None:
    from app.config import Settings
    from app.main import create_app

    settings = Settings(database_url=url, admin_api_key=ADMIN_KEY, log_level="WARNING", worker_enabled=False,
                        jwt_secret="bench-secret-that-is-long-enough-0123456789")
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    history = MODE == "history"
    rng = random.Random(1)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://laurel", timeout=300, headers=headers
    ) as client:
        for b in BADGES:
            (await client.post("/v1/admin/badges", json={"name": b["key"], "status": "active", **b})).raise_for_status()
        if history:
            for _ in range(HISTORY_EVENTS // 1000):
                (await client.post("/v1/events/batch", json={"events": _batch(rng, True)})).raise_for_status()
        bodies = [json.dumps({"events": _batch(rng, history)}).encode() for _ in range(BATCHES + 1)]
        post = {"content-type": "application/json"}
        (await client.post("/v1/events/batch", content=bodies[0], headers=post)).raise_for_status()  # warm-up
        profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profile:
            profile.enable()
        for body in bodies[1:]:
            r = await client.post("/v1/events/batch", content=body, headers=post)
            r.raise_for_status()
            assert r.json()["rejected"] == 0, r.text[:300]
        if profile:
            profile.disable()
            profile.dump_stats(os.environ["BENCH_PROFILE"])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{MODE}: {BATCHES} batches of 1,000 in-process: {BATCHES * 1000 / wall:,.0f} events/s, "
          f"{wall / BATCHES * 1000:.0f} ms per batch, this process's CPU {cpu / BATCHES * 1000:.0f} ms per batch")


def main() -> None:
    asyncio.run(run(fresh_database(DB)))  # migrations run their own event loop: before ours


if __name__ == "__main__":
    main()
