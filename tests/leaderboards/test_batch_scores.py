"""add_scores_many: many members' moves at once, with the same results as moving them one by one."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.leaderboards import ranking
from app.leaderboards import repository as lb_repo
from app.models import Leaderboard, LeaderboardScore, LeaderboardScoreCount, User
from tests.leaderboards.helpers import World, make_board, names

T0 = datetime(2026, 11, 23, tzinfo=UTC)
WEEK = "2026-W48"


async def _board(s: AsyncSession, key: str) -> int:
    board = Leaderboard(key=key, title=key, metric={"type": "points"}, period="weekly", dimensions=["city"],
                        display={}, privacy="public", min_group_size=1, status="active")
    s.add(board)
    await s.flush()
    return board.id


async def _users(s: AsyncSession, n: int, prefix: str = "b") -> list[int]:
    users = [User(external_id=f"{prefix}{i}", segments=[], preferences={}, points=0) for i in range(n)]
    s.add_all(users)
    await s.flush()
    return [u.id for u in users]


async def _scores(s: AsyncSession, board_id: int) -> dict[tuple[str, str, int], tuple[Decimal, datetime]]:
    rows = (await s.execute(select(LeaderboardScore).where(LeaderboardScore.board_id == board_id))).scalars()
    return {(r.period, r.dim, r.user_id): (Decimal(r.score), r.reached_at) for r in rows}


async def _counts(s: AsyncSession, board_id: int) -> dict[tuple[str, str, int, int, Decimal], int]:
    rows = (await s.execute(select(LeaderboardScoreCount).where(LeaderboardScoreCount.board_id == board_id))).scalars()
    return {(r.period, r.dim, r.level, r.parent, Decimal(r.key)): r.n for r in rows}


def _expected_counts(scores: dict[tuple[str, str, int], tuple[Decimal, datetime]]) -> Counter[Any]:
    out: Counter[Any] = Counter()
    for (period, dim, _), (score, _) in scores.items():
        for level, parent, key in ranking.count_keys(score):
            out[(period, dim, level, parent, key)] += 1
    return out


async def _check_ranks(s: AsyncSession, board_id: int) -> None:
    scores = await _scores(s, board_id)
    assert await _counts(s, board_id) == _expected_counts(scores)  # exact, and no rows left at zero
    for view in {(period, dim) for period, dim, _ in scores}:
        held = [v[0] for (p, d, _), v in scores.items() if (p, d) == view]
        probe = [*held, Decimal("-1e9"), Decimal("1e9")]
        ranks, total = await lb_repo.ranks_and_total(s, (board_id, *view), probe)
        assert total == len(held)
        for score in probe:
            assert ranks[score] == 1 + sum(1 for x in held if x > score), (view, score)


def _change(board_id: int, dim: str, amount: str, minutes: int, period: str = WEEK) -> lb_repo.ScoreChange:
    return lb_repo.ScoreChange(board_id, period, dim, Decimal(amount), T0 + timedelta(minutes=minutes))


@pytest.mark.sqlite_too
async def test_many_members_several_views_and_a_refund(app: FastAPI, backend: str) -> None:
    async with app.state.db.sessionmaker() as s, s.begin():
        board = await _board(s, "batch")
        a, b, c, d = await _users(s, 4)
        await lb_repo.add_scores_many(s, [
            (a, [_change(board, "", "100", 1), _change(board, "city:Shanghai", "100", 1)]),
            (b, [_change(board, "", "50", 2), _change(board, "city:Beijing", "50", 2)]),
            (c, [_change(board, "", "75.5", 3), _change(board, "city:Shanghai", "75.5", 3)]),
            (d, [_change(board, "", "50", 4), _change(board, "", "0", 4)]),
        ])
        await _check_ranks(s, board)
        # A refund lowers a's score below c's; b earns in two items of one batch (merged); d's moves net to
        # nothing (the score stays, restamped as the same two moves one by one would); a new period starts.
        await lb_repo.add_scores_many(s, [
            (a, [_change(board, "", "-30", 10), _change(board, "city:Shanghai", "-30", 10)]),
            (b, [_change(board, "", "10", 11), _change(board, "city:Beijing", "10", 11)]),
            (d, [_change(board, "", "5", 12), _change(board, "", "-5", 12)]),
            (b, [_change(board, "", "15", 13), _change(board, "city:Beijing", "15", 13)]),
            (c, [_change(board, "", "1", 14, period="2026-W49")]),
        ])
        scores = await _scores(s, board)
        assert scores[(WEEK, "", a)] == (Decimal(70), T0 + timedelta(minutes=10))
        assert scores[(WEEK, "city:Shanghai", a)][0] == Decimal(70)
        assert scores[(WEEK, "", b)] == (Decimal(75), T0 + timedelta(minutes=13))
        assert scores[(WEEK, "", d)] == (Decimal(50), T0 + timedelta(minutes=12))
        assert scores[("2026-W49", "", c)][0] == Decimal(1)
        await _check_ranks(s, board)
        ranks, total = await lb_repo.ranks_and_total(s, (board, WEEK, "city:Shanghai"), [Decimal("75.5"),
                                                                                         Decimal(70)])
        assert (ranks, total) == ({Decimal("75.5"): 1, Decimal(70): 2}, 2)
        await lb_repo.add_scores_many(s, [])  # nothing to do
        await lb_repo.add_scores_many(s, [(a, [])])


@pytest.mark.sqlite_too
async def test_moves_that_cancel_out_in_one_batch_still_put_the_member_on_the_board(
    app: FastAPI, backend: str
) -> None:
    """A purchase and its refund in one batch score as they do one by one: the member is on the board at 0."""
    async with app.state.db.sessionmaker() as s, s.begin():
        board = await _board(s, "net-zero")
        a, b, c = await _users(s, 3)
        await lb_repo.add_scores(s, a, [_change(board, "", "10", 1)])
        await lb_repo.add_scores(s, a, [_change(board, "", "-10", 2)])
        await lb_repo.add_scores_many(s, [(b, [_change(board, "", "10", 1), _change(board, "", "-10", 2)])])
        await lb_repo.add_scores_many(s, [(c, [_change(board, "", "0", 1)])])  # scored nothing: not on it
        scores = await _scores(s, board)
        assert scores == {(WEEK, "", a): (Decimal(0), T0 + timedelta(minutes=2)),
                          (WEEK, "", b): (Decimal(0), T0 + timedelta(minutes=2))}
        await _check_ranks(s, board)


@pytest.mark.sqlite_too
async def test_a_batch_equals_the_same_moves_one_by_one(app: FastAPI, backend: str) -> None:
    rng = random.Random(9)
    async with app.state.db.sessionmaker() as s, s.begin():
        one_by_one, batched = await _board(s, "single"), await _board(s, "batched")
        users = await _users(s, 60)
        for round_ in range(4):
            plan: list[tuple[int, list[tuple[str, Decimal, int]]]] = []
            for user in rng.sample(users, 40):  # (one item per member: see the first test for merging)
                amount = Decimal(rng.choice([1, 2, 5, 10, 1000, 250000])) * rng.choice([1, 1, 1, -1])
                amount /= rng.choice([1, 100])
                dims = ["", f"city:C{rng.randrange(3)}"]
                plan.append((user, [(dim, amount, round_ * 100 + rng.randrange(100)) for dim in dims]))
            for user, moves in plan:
                await lb_repo.add_scores(s, user, [lb_repo.ScoreChange(one_by_one, WEEK, dim, amount, T0 + timedelta(
                    minutes=m)) for dim, amount, m in moves])
            await lb_repo.add_scores_many(s, [
                (user, [lb_repo.ScoreChange(batched, WEEK, dim, amount, T0 + timedelta(minutes=m))
                        for dim, amount, m in moves])
                for user, moves in plan
            ])
            assert await _scores(s, batched) == await _scores(s, one_by_one)
            assert await _counts(s, batched) == await _counts(s, one_by_one)
        await _check_ranks(s, batched)


async def test_a_large_batch_takes_a_constant_number_of_statements(app: FastAPI) -> None:
    rng = random.Random(4)
    async with app.state.db.sessionmaker() as s, s.begin():
        board = await _board(s, "large")
        users = await _users(s, 1500, prefix="L")
        statements: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        sync_engine = app.state.db.engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", record)
        try:
            for round_ in range(2):
                statements.clear()
                await lb_repo.add_scores_many(s, [
                    (u, [_change(board, "", str(Decimal(rng.randint(-500, 90000)) / 100), round_),
                         _change(board, f"city:C{u % 7}", "12.5", round_)])
                    for u in users
                ])
                assert len(statements) <= 2, statements  # the move, and the delete of emptied count rows
        finally:
            event.remove(sync_engine, "before_cursor_execute", record)
        await _check_ranks(s, board)


async def test_sql_buckets_agree_with_python(app: FastAPI) -> None:
    rng = random.Random(11)
    values = {Decimal(rng.randint(-10**12, 10**12)) / 100 for _ in range(3000)}
    values |= {Decimal(rng.randint(-2000, 2000)) / 100 for _ in range(500)}
    values |= {Decimal(sign * ((1 << bits) + off)) / 100 for bits in range(0, 45) for off in (-1, 0, 1)
               for sign in (1, -1)}
    values |= {Decimal("0"), Decimal("0.001"), Decimal("-0.001"), Decimal("5.129"), Decimal("-5.129")}
    # Beyond a bigint of hundredths (a sum of many 1e15 amounts): capped alike, never an overflow.
    values |= {Decimal(sign * v) for v in (10**17, 10**20, 10**40, (1 << 62) // 100, (1 << 63) // 100)
               for sign in (1, -1)}
    ordered = sorted(values)
    sql = (f"SELECT {ranking.fine_bucket_sql('h.m')} FROM unnest(CAST(:v AS numeric[])) WITH ORDINALITY AS x(v, i) "
           f"CROSS JOIN LATERAL (SELECT {ranking.hundredths_sql('x.v')} AS m) h ORDER BY x.i")
    async with app.state.db.sessionmaker() as s:
        got = list((await s.execute(text(sql), {"v": ordered})).scalars())
    assert got == [ranking.fine_bucket(v) for v in ordered]
    assert got == sorted(got)  # non-decreasing in the score, the one property ranking needs


async def test_a_score_beyond_a_bigint_of_hundredths_still_ranks_and_never_refuses_the_event(
    client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any
) -> None:
    world = World(client, admin_headers, login)
    await make_board(client, admin_headers)
    await world.member("A")
    await world.member("B")
    now = datetime.now(UTC) - timedelta(minutes=1)
    events = [{"id": f"big-{i}", "user_id": "A", "type": "purchase", "occurred_at": now.isoformat(),
               "attributes": {"amount": 10**15}} for i in range(100)]
    r = await client.post("/v1/events/batch", json={"events": events}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert {x["status"] for x in r.json()["results"]} == {"accepted"}
    await world.buy("A", 10**15, now)
    await world.buy("B", 10**15, now)
    view = await world.view("top-spenders-weekly", "B")
    assert names(view) == [(1, "nick-A", 101 * 10**15), (2, "nick-B", 10**15)]
    assert view["me"]["rank"] == 2


@pytest.mark.sqlite_too
async def test_a_member_who_moves_is_ranked_in_the_new_citys_view_with_their_whole_score(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any, backend: str
) -> None:
    """"city (the member's profile city)": a move takes the member's scores of every period out of the old city's
    view and into the new one's, rank counts included; a member given a city for the first time joins it."""
    world = World(client, admin_headers, login)
    await make_board(client, admin_headers)
    await world.member("A", city="Shanghai")
    await world.member("B", city="Hangzhou")
    await world.member("C")
    last_week = datetime.now(UTC) - timedelta(days=7)
    await world.buy("A", 100)
    await world.buy("A", 30, last_week)
    await world.buy("B", 50)
    await world.buy("C", 70)
    for external_id, city in (("A", "Hangzhou"), ("C", "Beijing")):
        r = await client.put(f"/v1/users/{external_id}", json={"city": city}, headers=admin_headers)
        assert r.status_code == 200, r.text
    hz = await world.view("top-spenders-weekly", "A", city="Hangzhou")
    assert names(hz) == [(1, "nick-A", 100), (2, "nick-B", 50)] and hz["me"]["rank"] == 1
    before = await world.view("top-spenders-weekly", "A", city="Hangzhou", period="previous")
    assert names(before) == [(1, "nick-A", 30)]
    assert (await world.view("top-spenders-weekly", "A", city="Shanghai"))["total"] == 0
    assert names(await world.view("top-spenders-weekly", "C", city="Beijing")) == [(1, "nick-C", 70)]
    await world.buy("A", 5)  # and new events land in the new city's view, on top of the moved score
    assert names(await world.view("top-spenders-weekly", "B", city="Hangzhou"))[0] == (1, "nick-A", 105)
    r = await client.put("/v1/users/A", json={"city": None}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert names(await world.view("top-spenders-weekly", "B", city="Hangzhou")) == [(1, "nick-B", 50)]
    async with app.state.db.sessionmaker() as s:
        board_id = (await s.execute(select(Leaderboard.id))).scalar_one()
        scores = await _scores(s, board_id)
        assert await _counts(s, board_id) == _expected_counts(scores)  # no count left behind by the moves


async def test_a_sync_racing_the_members_first_event_still_moves_them_into_the_city_view(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sync finds no member; their first purchase creates and scores them before the sync's insert, which
    then finds them: the city is compared with what is stored, and the score moves into the city's view."""
    from app.users import repository as users_repo

    world = World(client, admin_headers, login)
    await make_board(client, admin_headers)
    original = users_repo.create_external

    async def racing(session: Any, external_id: str) -> Any:
        if external_id == "N":
            await world.buy("N", 100)  # on another connection: creates N (no city) and scores 100
        return await original(session, external_id)

    monkeypatch.setattr(users_repo, "create_external", racing)
    r = await client.put("/v1/users/N", json={"city": "Xian", "openid": "o-n", "nickname": "nick-N"},
                         headers=admin_headers)
    assert r.status_code in (200, 201), r.text
    monkeypatch.setattr(users_repo, "create_external", original)
    world.headers["N"] = await login("o-n")
    await world.buy("N", 5)
    city = await world.view("top-spenders-weekly", "N", city="Xian")
    assert city["me"] is not None and city["me"]["score"] == 105, city


async def test_opposite_city_moves_at_once_do_not_deadlock(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A moves X→Y while B moves Y→X: both cities' count rows change together, in key order, at the end."""
    import asyncio

    from app.users import service as users_service
    from app.users.schemas import UserUpsert

    world = World(client, admin_headers, login)
    await make_board(client, admin_headers)
    await world.member("A", city="Xian")
    await world.member("B", city="Yiwu")
    await world.buy("A", 100)
    await world.buy("B", 100)
    original = lb_repo._take_off_view
    arrived = 0
    both = asyncio.Event()

    async def gated(*args: Any) -> None:
        nonlocal arrived
        await original(*args)
        arrived += 1
        if arrived >= 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)  # each has taken its own rows off before either goes on

    monkeypatch.setattr(lb_repo, "_take_off_view", gated)

    async def move(external_id: str, city: str) -> None:
        async with app.state.db.sessionmaker() as s:
            await users_service.upsert(s, external_id, UserUpsert.model_validate({"city": city}))
            await s.commit()

    await asyncio.gather(move("A", "Yiwu"), move("B", "Xian"))
    async with app.state.db.sessionmaker() as s:
        board_id = (await s.execute(select(Leaderboard.id))).scalar_one()
        scores = await _scores(s, board_id)
        assert await _counts(s, board_id) == _expected_counts(scores)
    assert names(await world.view("top-spenders-weekly", "A", city="Yiwu")) == [(1, "nick-A", 100)]
