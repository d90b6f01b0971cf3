"""The PostgreSQL fast path talks to asyncpg under the session: it must stay inside the session's transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from app.events import pg_fast
from tests.api import ADMIN, badge


async def test_a_claim_as_first_statement_runs_inside_the_transaction_and_rolls_back_with_it(app: FastAPI) -> None:
    now = datetime.now(UTC)
    async with app.state.db.sessionmaker() as session:
        member, event_id = await pg_fast.claim(session, "TX-1", "tx-key", "visit", "pos", now, now, {"a": 1})
        assert event_id is not None and member.external_id == "TX-1" and member.points == 0
        raw = await (await session.connection()).get_raw_connection()
        assert raw.driver_connection.is_in_transaction()
        again, duplicate = await pg_fast.claim(session, "TX-1", "tx-key", "visit", "pos", now, now, {})
        assert duplicate is None and again.id == member.id
        await session.rollback()
    async with app.state.db.sessionmaker() as session:
        found = await session.execute(text("SELECT count(*) FROM events WHERE idempotency_key = 'tx-key'"))
        assert found.scalar_one() == 0
        members = await session.execute(text("SELECT count(*) FROM users WHERE external_id = 'TX-1'"))
        assert members.scalar_one() == 0


async def test_state_read_returns_counters_awards_and_levels_of_the_member(app: FastAPI) -> None:
    now = datetime.now(UTC)
    async with app.state.db.sessionmaker() as session:
        member, _ = await pg_fast.claim(session, "ST-1", "st-key", "visit", "pos", now, now, {})
        await session.execute(text(
            "INSERT INTO rule_counters (user_id, scope, bucket, state) VALUES (:u, 's1', 'lifetime', '{\"count\": 2}')"
        ), {"u": member.id})
        await session.execute(text(
            "INSERT INTO user_levels (user_id, rank, name, reached_at) VALUES (:u, 1, 'Starter', now())"
        ), {"u": member.id})
        counters, awards, levels = await pg_fast.read_state(
            session, member.id, [(member.id, "s1", "lifetime"), (member.id, "s2", "lifetime")]
        )
        assert counters == [(member.id, "s1", "lifetime", {"count": 2})]
        assert awards == [] and levels == [1]
        await session.rollback()


async def test_reads_and_the_balance_write_of_several_members_reach_each_members_own_rows(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The holdings and counters reads (a probe per key) and the flush's balance update (members keyed by id in one
    JSON object) on a group of members: each gets exactly its own rows and its own balance."""
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    await badge(client, "third-visit", [{"event": "visit", "threshold": 3}], points=20)
    at = datetime.now(UTC) - timedelta(hours=1)
    events = [
        {"id": f"pg-{user}-{i}", "user_id": user, "type": "visit", "occurred_at": at.isoformat(), "source": "pos"}
        for user, n in (("PG-A", 3), ("PG-B", 1), ("PG-C", 0)) for i in range(n)
    ] + [{"id": "pg-C-other", "user_id": "PG-C", "type": "post", "occurred_at": at.isoformat(), "source": "pos"}]
    r = await client.post("/v1/events/batch", json={"events": events}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text
    async with app.state.db.sessionmaker() as session:
        ids = dict((await session.execute(text(
            "SELECT external_id, id FROM users WHERE external_id LIKE 'PG-%'"))).all())
        points = dict((await session.execute(text(
            "SELECT external_id, points FROM users WHERE external_id LIKE 'PG-%'"))).all())
        assert points == {"PG-A": 25, "PG-B": 5, "PG-C": 0}
        holdings = await pg_fast.read_holdings(session, [ids["PG-A"], ids["PG-B"], ids["PG-C"]])
        awards = sorted((u, key) for u, _badge, key in holdings if key is not None)
        assert awards == sorted([(ids["PG-A"], "once"), (ids["PG-A"], "once"), (ids["PG-B"], "once")])
        levels = sorted((u, rank) for u, rank, key in holdings if key is None)
        # 25 points: Community Starter, Contributor and Active Member; 5: Starter
        assert levels == [(ids["PG-A"], 1), (ids["PG-A"], 2), (ids["PG-A"], 3), (ids["PG-B"], 1)]
        scopes = [s for (s,) in (await session.execute(text(
            "SELECT DISTINCT scope FROM rule_counters WHERE user_id = :u"), {"u": ids["PG-A"]}))]
        keys = [(ids[u], s, "lifetime") for u in ("PG-A", "PG-B", "PG-C") for s in scopes]
        counters = {(u, s): state["count"] for u, s, _b, state in await pg_fast.read_counters(session, keys)}
        # A's two visit counters (First Visit's stopped at 1 once held), B's two; none of C's
        assert sorted(counters.values()) == [1, 1, 1, 3]
        assert {u for u, _s in counters} == {ids["PG-A"], ids["PG-B"]}


async def test_two_first_events_of_a_new_member_racing_both_land_on_one_member(app: FastAPI) -> None:
    now = datetime.now(UTC)
    async with app.state.db.sessionmaker() as first, app.state.db.sessionmaker() as second:
        winner, event_a = await pg_fast.claim(first, "RACE-1", "race-a", "visit", "pos", now, now, {})
        # The second claim waits on the first's uncommitted insert of the member; once it commits, the second
        # finds the member (locking it) instead of creating another.
        loser = asyncio.create_task(pg_fast.claim(second, "RACE-1", "race-b", "visit", "pos", now, now, {}))
        await asyncio.sleep(0.2)
        assert not loser.done()
        await first.commit()
        member, event_b = await loser
        await second.commit()
    assert member.id == winner.id and event_a is not None and event_b is not None
    async with app.state.db.sessionmaker() as session:
        members = await session.execute(text("SELECT count(*) FROM users WHERE external_id = 'RACE-1'"))
        assert members.scalar_one() == 1



async def test_a_batch_claim_draws_ids_from_each_tables_own_sequence(app: FastAPI) -> None:
    """The ids handed to awards, ledger entries and award events come from their own tables' sequences (a
    mix-up would let a later row take an id already in use)."""
    now = datetime.now(UTC)
    rows = [{"idempotency_key": "ids-1", "user_id": "IDS-1", "type": "visit", "source": "pos", "occurred_at": now,
             "attributes": {}}]
    async with app.state.db.sessionmaker() as session:
        members, stored, ids, created = await pg_fast.claim_many(session, ["IDS-1"], rows, now, draw=3)
        assert created == {"IDS-1"}
        assert set(members) == {"IDS-1"} and set(stored) == {"ids-1"}
        assert len(ids) == 3 and len(set(ids)) == 3
        for column, table in enumerate(pg_fast.ID_TABLES):
            last = await session.execute(text(f"SELECT last_value FROM {table}_id_seq"))
            drawn = sorted(row[column] for row in ids)
            assert drawn[-1] == last.scalar_one()
            assert drawn == list(range(drawn[0], drawn[0] + 3))  # nobody else drew meanwhile
        assert stored["ids-1"] not in {row[0] for row in ids}
        await session.rollback()


def test_a_flush_document_reads_back_as_the_rows_with_datetimes_in_iso_8601() -> None:
    import json

    at = datetime(2026, 11, 25, 10, 0, 0, 5, tzinfo=UTC)
    rows = [{"id": 1, "at": at, "name": "探店达人", "evidence": {"value": 2.5, "ok": True, "none": None}}]
    assert json.loads(pg_fast.document(rows)) == [
        {"id": 1, "at": at.isoformat(), "name": "探店达人", "evidence": {"value": 2.5, "ok": True, "none": None}}
    ]



def test_a_flush_document_holds_an_integer_beyond_64_bits() -> None:
    # orjson refuses one; the standard library's encoder takes over (no engine row should carry one, amounts
    # are bounded, but a flush must not fail for it).
    import json

    at = datetime(2026, 11, 25, tzinfo=UTC)
    assert json.loads(pg_fast.document([{"n": 2**70, "at": at}])) == [{"n": 2**70, "at": at.isoformat()}]
