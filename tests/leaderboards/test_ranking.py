"""The rank aggregate: bucket function properties (pure) and exact ranks after random moves (database)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi import FastAPI
from sqlalchemy import select

from app.leaderboards import ranking
from app.leaderboards import repository as lb_repo
from app.models import Leaderboard, LeaderboardScore, LeaderboardScoreCount, User


def test_buckets_never_decrease_as_the_score_grows() -> None:
    rng = random.Random(7)
    values = sorted({Decimal(rng.randint(-10**9, 10**9)) / 100 for _ in range(20_000)}
                    | {Decimal(x) / 100 for x in range(-2000, 2000)} | {Decimal("1e12"), Decimal("-1e12")})
    previous = None
    for v in values:
        fine = ranking.fine_bucket(v)
        if previous is not None:
            assert fine >= previous[0] and ranking.coarse_bucket(fine) >= ranking.coarse_bucket(previous[0]), v
        previous = (fine, v)


def test_buckets_are_narrow_and_few() -> None:
    # ~0.4 % wide fine buckets; one coarse bucket per doubling.
    assert ranking.fine_bucket(Decimal("1000.00")) != ranking.fine_bucket(Decimal("1005.00"))
    assert ranking.fine_bucket(Decimal("1000.00")) == ranking.fine_bucket(Decimal("1000.01"))
    assert ranking.coarse_bucket(ranking.fine_bucket(Decimal("10") ** 10)) < 64
    assert ranking.fine_bucket(Decimal("-0.01")) < ranking.fine_bucket(Decimal(0)) == 0


def test_count_deltas_move_a_member_between_rows() -> None:
    deltas = ranking.count_deltas(Decimal(5), Decimal("5.01"))
    assert deltas[(ranking.EXACT, ranking.fine_bucket(Decimal(5)), Decimal(5))] == -1
    assert deltas[(ranking.EXACT, ranking.fine_bucket(Decimal("5.01")), Decimal("5.01"))] == 1
    assert sum(deltas.values()) == 0
    assert ranking.count_deltas(None, Decimal(3)) == {k: 1 for k in ranking.count_keys(Decimal(3))}
    assert ranking.count_deltas(Decimal(3), Decimal(3)) == {}


async def test_ranks_stay_exact_through_random_moves_including_refunds(app: FastAPI) -> None:
    rng = random.Random(42)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    async with app.state.db.sessionmaker() as s, s.begin():
        board = Leaderboard(key="rand", title="r", metric={"type": "points"}, period="weekly", dimensions=[],
                            display={}, privacy="public", min_group_size=1, status="active")
        s.add(board)
        users = [User(external_id=f"u{i}", segments=[], preferences={}, points=0) for i in range(120)]
        s.add_all(users)
        await s.flush()
        view = (board.id, "2026-W48", "")
        amounts = [Decimal(rng.choice([1, 2, 5, 10, 1000, 250000])) * rng.choice([1, 1, 1, -1]) / rng.choice([1, 100])
                   for _ in range(600)]
        for i, amount in enumerate(amounts):
            user = rng.choice(users)
            await lb_repo.add_scores(s, user.id, [lb_repo.ScoreChange(board.id, "2026-W48", "", amount,
                                                                      t0 + timedelta(seconds=i))])
        scores = [Decimal(v) for v in (await s.execute(
            select(LeaderboardScore.score).where(LeaderboardScore.board_id == board.id))).scalars()]
        probe = [*sorted(set(scores)), Decimal("-1e9"), Decimal("1e9"), Decimal("0.005")]
        ranks, total = await lb_repo.ranks_and_total(s, view, probe)
        assert total == len(scores)
        for p in probe:
            assert ranks[p] == 1 + sum(1 for x in scores if x > p), p
        zero_rows = (await s.execute(select(LeaderboardScoreCount).where(LeaderboardScoreCount.n <= 0))).all()
        assert zero_rows == []
