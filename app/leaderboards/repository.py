"""All leaderboard SQL: definitions, score moves with their count maintenance, and the ranked reads.

Reads use Core statements (no ORM identity map on the member path). Score writes happen inside the engine's
transaction under the member's lock, so reading a member's current scores and then writing them is safe;
the shared count rows are only ever changed with `n = n + delta`, in key order, so concurrent members
cannot deadlock on them within one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, exists, func, literal, or_, select, tuple_, union_all
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.dialect import insert_for
from app.leaderboards import ranking
from app.models import Leaderboard, LeaderboardRankSnapshot, LeaderboardScore, LeaderboardScoreCount, User

S = LeaderboardScore
C = LeaderboardScoreCount
ViewKey = tuple[int, str, str]  # (board_id, period, dim)


@dataclass(frozen=True)
class ScoreChange:
    board_id: int
    period: str
    dim: str
    delta: Decimal
    at: datetime


# --------------------------------------------------------------------------- definitions


async def by_key(session: AsyncSession, key: str) -> Leaderboard | None:
    return (await session.execute(select(Leaderboard).where(Leaderboard.key == key))).scalar_one_or_none()


async def list_all(session: AsyncSession, status: str | None = None) -> Sequence[Leaderboard]:
    stmt = select(Leaderboard).order_by(Leaderboard.id)
    if status is not None:
        stmt = stmt.where(Leaderboard.status == status)
    return (await session.execute(stmt)).scalars().all()


async def active_rows(session: AsyncSession) -> Sequence[Row[Any]]:
    """What the engine needs of each active board, in one light query."""
    stmt = select(
        Leaderboard.id, Leaderboard.key, Leaderboard.metric, Leaderboard.period, Leaderboard.dimensions,
        Leaderboard.updated_at,
    ).where(Leaderboard.status == "active").order_by(Leaderboard.id)
    return (await session.execute(stmt)).all()


async def has_scores(session: AsyncSession, board_id: int) -> bool:
    return bool((await session.execute(select(exists().where(S.board_id == board_id)))).scalar())


async def delete_board(session: AsyncSession, board: Leaderboard) -> None:
    # Explicit deletes so SQLite (no FK cascade unless enabled per connection) behaves like PostgreSQL.
    await session.execute(delete(C).where(C.board_id == board.id))
    await session.execute(delete(S).where(S.board_id == board.id))
    await session.execute(delete(LeaderboardRankSnapshot).where(LeaderboardRankSnapshot.board_id == board.id))
    await session.delete(board)
    await session.flush()


# --------------------------------------------------------------------------- writes
#
# Statements on the hot paths are built once with bind parameters: building a SQLAlchemy statement per call
# cost ~0.8 ms here, several times what PostgreSQL spends answering it.

ST: Table = LeaderboardScore.__table__  # type: ignore[assignment]
CT: Table = LeaderboardScoreCount.__table__  # type: ignore[assignment]
UT: Table = User.__table__  # type: ignore[assignment]
_WRITES: dict[str, tuple[Any, Any]] = {}

_CURRENT = select(ST.c.board_id, ST.c.period, ST.c.dim, ST.c.score, ST.c.reached_at).where(
    ST.c.board_id.in_(bindparam("boards", expanding=True)),
    ST.c.period.in_(bindparam("periods", expanding=True)),
    ST.c.dim.in_(bindparam("dims", expanding=True)),
    ST.c.user_id == bindparam("user_id"),
)
_DELETE_EMPTY = delete(CT).where(
    CT.c.board_id == bindparam("b_board_id"), CT.c.period == bindparam("b_period"), CT.c.dim == bindparam("b_dim"),
    CT.c.level == bindparam("b_level"), CT.c.parent == bindparam("b_parent"), CT.c.key == bindparam("b_key"),
    CT.c.n <= 0,
)


def _upserts(session: AsyncSession) -> tuple[Any, Any]:
    """(scores upsert, counts increment) for the session's dialect, built once."""
    name = session.get_bind().dialect.name
    if name not in _WRITES:
        ins = insert_for(session, ST)
        scores = ins.on_conflict_do_update(
            index_elements=["board_id", "period", "dim", "user_id"],
            set_={"score": ins.excluded.score, "reached_at": ins.excluded.reached_at},
        )
        cins = insert_for(session, CT)
        counts = cins.on_conflict_do_update(
            index_elements=["board_id", "period", "dim", "level", "parent", "key"],
            set_={"n": CT.c.n + cins.excluded.n},
        )
        _WRITES[name] = (scores, counts)
    return _WRITES[name]


async def add_scores(session: AsyncSession, user_id: int, changes: Sequence[ScoreChange]) -> None:
    """Move one member's scores and keep the rank counts in step (caller holds the member's lock)."""
    merged: dict[ViewKey, tuple[Decimal, datetime]] = {}
    for ch in changes:
        key = (ch.board_id, ch.period, ch.dim)
        delta, at = merged.get(key, (Decimal(0), ch.at))
        merged[key] = (delta + ch.delta, max(at, ch.at))
    keys = sorted(k for k, (d, _) in merged.items() if d != 0)
    if not keys:
        return
    old = await _current(session, user_id, keys)
    score_rows: list[dict[str, Any]] = []
    counts: dict[tuple[int, str, str, int, int, Decimal], int] = {}
    for key in keys:
        delta, at = merged[key]
        prev = old.get(key)
        before = prev[0] if prev else None
        after = (before or Decimal(0)) + delta
        # A tie goes to whoever reached that score first, so any change (a refund too) restamps it.
        reached = at if prev is None else max(prev[1], at)
        score_rows.append({"board_id": key[0], "period": key[1], "dim": key[2], "user_id": user_id,
                           "score": after, "reached_at": reached})
        for (level, parent, k), d in ranking.count_deltas(before, after).items():
            ck = (*key, level, parent, k)
            counts[ck] = counts.get(ck, 0) + d
    upsert_scores, add_counts = _upserts(session)
    await session.execute(upsert_scores, score_rows)
    ordered = sorted((k, n) for k, n in counts.items() if n)  # one lock order for everyone: no deadlocks
    if ordered:
        await session.execute(add_counts, [
            {"board_id": b, "period": p, "dim": d, "level": lv, "parent": pa, "key": k, "n": n}
            for (b, p, d, lv, pa, k), n in ordered
        ])
    lowered = [k for k, n in ordered if n < 0]
    if lowered:
        # Scores nobody holds any more would otherwise pile up in the exact level and slow its range scans.
        await session.execute(_DELETE_EMPTY, [
            {"b_board_id": b, "b_period": p, "b_dim": d, "b_level": lv, "b_parent": pa, "b_key": k}
            for b, p, d, lv, pa, k in lowered
        ])


async def _current(
    session: AsyncSession, user_id: int, keys: Sequence[ViewKey]
) -> dict[ViewKey, tuple[Decimal, datetime]]:
    rows = await session.execute(_CURRENT, {
        "boards": sorted({k[0] for k in keys}), "periods": sorted({k[1] for k in keys}),
        "dims": sorted({k[2] for k in keys}), "user_id": user_id,
    })
    wanted = set(keys)
    return {(r[0], r[1], r[2]): (Decimal(r[3]), r[4]) for r in rows if (r[0], r[1], r[2]) in wanted}


# --------------------------------------------------------------------------- ranked reads

ENTRY_COLUMNS = (ST.c.user_id, ST.c.score, ST.c.reached_at, UT.c.nickname, UT.c.avatar_url, UT.c.tier,
                 UT.c.preferences)
_IN_VIEW = (ST.c.board_id == bindparam("board_id"), ST.c.period == bindparam("period"),
            ST.c.dim == bindparam("dim"))
_JOIN = ST.join(UT, UT.c.id == ST.c.user_id)
_DISPLAY_ORDER = (ST.c.score.desc(), ST.c.reached_at, ST.c.user_id)

_FRIENDS = (
    select(*ENTRY_COLUMNS).select_from(_JOIN)
    .where(*_IN_VIEW, ST.c.user_id.in_(bindparam("user_ids", expanding=True))).order_by(*_DISPLAY_ORDER)
)


def _page_stmt() -> Any:
    """One round trip for a member's view: the page (side 0), the caller's row (5), and up to k neighbours as
    four index range scans from the caller's position — ties placed before (1), higher scores (2), ties
    placed after (3), lower scores (4). Without a row for the caller the neighbour parts find nothing."""
    uid: Any = bindparam("user_id")

    def mine(col: Any) -> Any:
        return select(col).where(*_IN_VIEW, ST.c.user_id == uid).scalar_subquery()

    score, pos, at = mine(ST.c.score), tuple_(ST.c.reached_at, ST.c.user_id), tuple_(mine(ST.c.reached_at), uid)

    def part(side: int, cond: Any, order: Sequence[Any], limit: Any, offset: Any = None) -> Any:
        stmt = (select(literal(side).label("side"), *ENTRY_COLUMNS).select_from(_JOIN).where(*_IN_VIEW, cond)
                .order_by(*order).limit(limit))
        return (stmt if offset is None else stmt.offset(offset)).subquery().select()

    k: Any = bindparam("k")
    return union_all(
        part(0, literal(True), _DISPLAY_ORDER, bindparam("limit"), bindparam("offset")),
        part(5, ST.c.user_id == uid, (), 1),
        part(1, and_(ST.c.score == score, pos < at), (ST.c.reached_at.desc(), ST.c.user_id.desc()), k),
        part(2, ST.c.score > score, (ST.c.score, ST.c.reached_at.desc(), ST.c.user_id.desc()), k),
        part(3, and_(ST.c.score == score, pos > at), (ST.c.reached_at, ST.c.user_id), k),
        part(4, ST.c.score < score, _DISPLAY_ORDER, k),
    )


_PAGE = _page_stmt()


@dataclass
class Page:
    rows: list[Row[Any]]
    mine: Row[Any] | None
    above: list[Row[Any]]
    below: list[Row[Any]]


def _view_params(view: ViewKey) -> dict[str, Any]:
    return {"board_id": view[0], "period": view[1], "dim": view[2]}


async def page(session: AsyncSession, view: ViewKey, user_id: int, limit: int, offset: int, k: int) -> Page:
    """A page in display order plus the caller's row and up to k members just above and below it."""
    result: Any = await session.execute(_PAGE, {
        **_view_params(view), "user_id": user_id, "limit": limit, "offset": offset, "k": k,
    })
    sides: dict[int, list[Row[Any]]] = {side: [] for side in range(6)}
    for r in result.all():
        sides[r.side].append(r)
    above = (sides[1] + sides[2])[:k]  # nearest first
    above.reverse()  # display order: highest first
    return Page(rows=sides[0], mine=sides[5][0] if sides[5] else None, above=above,
                below=(sides[3] + sides[4])[:k])


_C_VIEW = (CT.c.board_id == bindparam("board_id"), CT.c.period == bindparam("period"), CT.c.dim == bindparam("dim"))
_RANK_STMTS: dict[int, Any] = {}


def _sum_above(level: int, parent: Any, key: Any) -> Any:
    return select(func.coalesce(func.sum(CT.c.n), 0)).where(
        *_C_VIEW, CT.c.level == level, CT.c.parent == parent, CT.c.key > key
    ).scalar_subquery()


def _rank_stmt(n: int) -> Any:
    """SELECT total, members above score 0, …, members above score n-1 (see ranking.py), built once per n."""
    stmt = _RANK_STMTS.get(n)
    if stmt is None:
        total = select(func.coalesce(func.sum(CT.c.n), 0)).where(
            *_C_VIEW, CT.c.level == ranking.COARSE, CT.c.parent == 0
        ).scalar_subquery()
        cols = [total.label("total")]
        for i in range(n):
            key_type = CT.c.key.type
            cols.append((
                _sum_above(ranking.COARSE, 0, bindparam(f"c{i}", type_=key_type))
                + _sum_above(ranking.FINE, bindparam(f"cp{i}"), bindparam(f"f{i}", type_=key_type))
                + _sum_above(ranking.EXACT, bindparam(f"fp{i}"), bindparam(f"s{i}", type_=key_type))
            ).label(f"a{i}"))
        stmt = _RANK_STMTS[n] = select(*cols)
    return stmt


def _rank_params(view: ViewKey, scores: Sequence[Decimal]) -> dict[str, Any]:
    params = _view_params(view)
    for i, s in enumerate(scores):
        (_, _, coarse), (_, cp, fine), (_, fp, exact) = ranking.above_ranges(s)
        params.update({f"c{i}": coarse, f"cp{i}": cp, f"f{i}": fine, f"fp{i}": fp, f"s{i}": exact})
    return params


async def ranks_and_total(
    session: AsyncSession, view: ViewKey, scores: Sequence[Decimal]
) -> tuple[dict[Decimal, int], int]:
    """Rank of each score (1 + members above it; ties share it) and the view's member count, in one query."""
    distinct = sorted(set(scores))
    row = (await session.execute(_rank_stmt(len(distinct)), _rank_params(view, distinct))).one()
    return {s: 1 + int(row[i + 1]) for i, s in enumerate(distinct)}, int(row[0])


async def members_above(session: AsyncSession, view: ViewKey, scores: Sequence[Decimal]) -> list[int]:
    if not scores:
        return []
    row = (await session.execute(_rank_stmt(len(scores)), _rank_params(view, scores))).one()
    return [int(v) for v in row[1:]]


async def friends_rows(session: AsyncSession, view: ViewKey, user_ids: Sequence[int]) -> list[Row[Any]]:
    result: Any = await session.execute(_FRIENDS, {**_view_params(view), "user_ids": list(user_ids)})
    return list(result.all())


# --------------------------------------------------------------------------- admin reads (ORM-built: not hot)


def _view(view: ViewKey) -> tuple[Any, ...]:
    return (S.board_id == view[0], S.period == view[1], S.dim == view[2])


async def participants_per_period(session: AsyncSession, board_id: int) -> list[tuple[str, int]]:
    stmt = (
        select(C.period, func.sum(C.n))
        .where(C.board_id == board_id, C.dim == "", C.level == ranking.COARSE, C.parent == 0)
        .group_by(C.period).order_by(C.period.desc())
    )
    return [(r[0], int(r[1])) for r in (await session.execute(stmt)).all() if int(r[1]) > 0]


async def extremes(session: AsyncSession, view: ViewKey) -> tuple[Decimal | None, Decimal | None]:
    hi = (await session.execute(select(S.score).where(*_view(view)).order_by(S.score.desc()).limit(1))).scalar()
    lo = (await session.execute(select(S.score).where(*_view(view)).order_by(S.score).limit(1))).scalar()
    return (None if lo is None else Decimal(lo)), (None if hi is None else Decimal(hi))


async def admin_page(
    session: AsyncSession, view: ViewKey, limit: int, after: tuple[Decimal, datetime, int] | None = None
) -> list[Row[Any]]:
    """Keyset page in display order with the member's external id and city (admin views and CSV export)."""
    stmt = (
        select(S.user_id, S.score, S.reached_at, User.external_id, User.nickname, User.city)
        .join(User, User.id == S.user_id).where(*_view(view))
    )
    if after is not None:
        score, reached, uid = after
        stmt = stmt.where(or_(
            S.score < score,
            and_(S.score == score, tuple_(S.reached_at, S.user_id) > tuple_(literal(reached, S.reached_at.type),
                                                                             literal(uid))),
        ))
    stmt = stmt.order_by(S.score.desc(), S.reached_at, S.user_id).limit(limit)
    result: Any = await session.execute(stmt)
    return list(result.all())
