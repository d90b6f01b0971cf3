"""All leaderboard SQL: definitions, score moves with their count maintenance, and the ranked reads.

Reads use Core statements (no ORM identity map on the member path). Score writes happen inside the engine's
transaction under the member's lock, so reading a member's current scores and then writing them is safe;
the shared count rows are only ever changed with `n = n + delta`, in key order, so concurrent members
cannot deadlock on them within one statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, exists, func, literal, or_, select, text, tuple_, union_all
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


async def member_scores(
    session: AsyncSession, user_id: int, views: Sequence[ViewKey], boards_created_by: datetime
) -> dict[ViewKey, Decimal]:
    """A member's scores in some views, on boards that already existed at a moment (what they could count)."""
    if not views:
        return {}
    stmt = (
        select(S.board_id, S.period, S.dim, S.score)
        .join(Leaderboard, Leaderboard.id == S.board_id)
        .where(S.user_id == user_id, Leaderboard.created_at <= boards_created_by,
               tuple_(S.board_id, S.period, S.dim).in_(list(views)))
    )
    return {(r[0], r[1], r[2]): r[3] for r in await session.execute(stmt)}


async def created_by(session: AsyncSession, board_ids: Sequence[int], moment: datetime) -> set[int]:
    """Those of these boards that already existed at a moment (what they could count)."""
    if not board_ids:
        return set()
    stmt = select(Leaderboard.id).where(Leaderboard.id.in_(list(board_ids)), Leaderboard.created_at <= moment)
    return set((await session.execute(stmt)).scalars().all())


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
# cost ~0.8 ms here, several times what PostgreSQL spends answering it. They run on the session's Core
# connection (the ORM execute path adds ~0.1 ms a statement and there are no ORM objects here).
#
# One score move, for any number of members: read the current scores of every (board, period, dim, member)
# key in one query, then write the scores and the rank-count increments, then delete the count rows that
# reached zero (only when some did). On PostgreSQL every statement takes its rows as a fixed set of arrays
# joined through unnest(), so the SQL text (and asyncpg's prepared statement) is the same whatever the number
# of members, and the scores upsert and the counts upsert are one statement (two data-modifying CTEs on
# different tables) that hands back the count rows left at zero: two round trips when nothing empties, three
# when something does. SQLite takes the keys as one JSON array (json_each) and the writes as executemany.

ST: Table = LeaderboardScore.__table__  # type: ignore[assignment]
CT: Table = LeaderboardScoreCount.__table__  # type: ignore[assignment]
UT: Table = User.__table__  # type: ignore[assignment]

ScoreKey = tuple[int, str, str, int]  # (board_id, period, dim, user_id)
CountRow = tuple[int, str, str, int, int, Decimal]  # (board_id, period, dim, level, parent, key)


def _unnest(prefix: str, columns: Sequence[tuple[str, str]]) -> str:
    args = ", ".join(f"(SELECT CAST(:{prefix}{name} AS {sql_type}[]))" for name, sql_type in columns)
    return f"unnest({args}) AS {prefix}k({', '.join(name for name, _ in columns)})"


_SCORE_COLS = (("board_id", "bigint"), ("period", "text"), ("dim", "text"), ("user_id", "bigint"))
_COUNT_COLS = (("board_id", "bigint"), ("period", "text"), ("dim", "text"), ("level", "smallint"),
               ("parent", "bigint"), ("key", "numeric"))

_FINE = ranking.fine_bucket_sql("h.m")
_BITS = ranking.MANTISSA_BITS

def _apply_counts(source: str) -> str:
    """The tail of a statement whose CTE `source` holds count changes (board_id … key, n): apply them in key order
    (ordered by the database's collation: one lock order for every writer of the counts, no deadlocks) and hand
    back the rows left at zero."""
    return f""", counts AS (
  INSERT INTO leaderboard_score_counts AS c (board_id, period, dim, level, parent, key, n)
  SELECT * FROM {source} ORDER BY board_id, period, dim, level, parent, key
  ON CONFLICT (board_id, period, dim, level, parent, key) DO UPDATE SET n = c.n + excluded.n
  RETURNING c.ctid, c.n
)
SELECT ctid FROM counts WHERE n <= 0"""


# Every (board, period, dim, member) key's move in one statement: read the current score, upsert the new one,
# turn each member leaving its old score and joining its new one into count deltas (the three levels of
# ranking.count_keys, bucketed in SQL exactly as in Python), apply them in key order (one lock order for
# everyone: no deadlocks), and hand back the count rows left at zero.
_PG_MOVE = text(f"""
WITH k AS (
  SELECT * FROM {_unnest("k_", (*_SCORE_COLS, ("delta", "numeric"), ("at", "timestamptz")))}
), moved AS (
  SELECT k.board_id, k.period, k.dim, k.user_id, s.score AS before, coalesce(s.score, 0) + k.delta AS after,
         CASE WHEN s.reached_at IS NULL THEN k.at ELSE greatest(s.reached_at, k.at) END AS reached
  FROM k LEFT JOIN leaderboard_scores s ON s.board_id = k.board_id AND s.period = k.period AND s.dim = k.dim
                                        AND s.user_id = k.user_id
), scores AS (
  INSERT INTO leaderboard_scores AS s (board_id, period, dim, user_id, score, reached_at)
  SELECT board_id, period, dim, user_id, after, reached FROM moved
  ON CONFLICT (board_id, period, dim, user_id)
  DO UPDATE SET score = excluded.score, reached_at = excluded.reached_at
), steps AS (
  SELECT x.board_id, x.period, x.dim, x.score, x.d, {_FINE} AS fine
  FROM (SELECT board_id, period, dim, before AS score, -1 AS d FROM moved WHERE before IS NOT NULL
        UNION ALL SELECT board_id, period, dim, after, 1 FROM moved) x
  CROSS JOIN LATERAL (SELECT {ranking.hundredths_sql("x.score")} AS m) h
), deltas AS (
  SELECT board_id, period, dim, level, parent, key, sum(d) AS n FROM (
    SELECT board_id, period, dim, {ranking.EXACT} AS level, fine AS parent, score AS key, d FROM steps
    UNION ALL SELECT board_id, period, dim, {ranking.FINE}, fine >> {_BITS}, fine, d FROM steps
    UNION ALL SELECT board_id, period, dim, {ranking.COARSE}, 0, fine >> {_BITS}, d FROM steps
  ) y GROUP BY board_id, period, dim, level, parent, key HAVING sum(d) <> 0
){_apply_counts("deltas")}
""")

# The rows the move left at zero, by the row versions it wrote: this transaction holds their locks, so they
# stay where they are, and a TID scan cannot be turned into a scan of the whole table by a poor estimate of
# `n <= 0` (joining the keys instead, the planner did exactly that).
_PG_DELETE_EMPTY = text("DELETE FROM leaderboard_score_counts WHERE ctid = ANY(CAST(:ctids AS tid[])) AND n <= 0")


# Count changes of a city move, applied in the key order _PG_MOVE uses; hands back the rows left at zero.
_PG_ADD_COUNTS = text(f"""
WITH d AS (
  SELECT * FROM {_unnest("d_", (*_COUNT_COLS, ("n", "bigint")))}
){_apply_counts("d")}
""")


def _arrays(prefix: str, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    return {f"{prefix}{name}": [r[i] for r in rows] for i, name in enumerate(names)}


_SCORE_NAMES = [name for name, _ in _SCORE_COLS]
_COUNT_NAMES = [name for name, _ in _COUNT_COLS]

_SQLITE_KEYS = func.json_each(bindparam("keys")).table_valued("value").alias("k")
_SQLITE_CURRENT = select(ST.c.board_id, ST.c.period, ST.c.dim, ST.c.user_id, ST.c.score, ST.c.reached_at).select_from(
    _SQLITE_KEYS.join(ST, and_(*(
        col == func.json_extract(_SQLITE_KEYS.c.value, f"$[{i}]")
        for i, col in enumerate((ST.c.board_id, ST.c.period, ST.c.dim, ST.c.user_id))
    )))
)
_SQLITE_DELETE_EMPTY = delete(CT).where(
    CT.c.board_id == bindparam("b_board_id"), CT.c.period == bindparam("b_period"), CT.c.dim == bindparam("b_dim"),
    CT.c.level == bindparam("b_level"), CT.c.parent == bindparam("b_parent"), CT.c.key == bindparam("b_key"),
    CT.c.n <= 0,
)
_SQLITE_WRITES: list[tuple[Any, Any]] = []


def _sqlite_upserts() -> tuple[Any, Any]:
    """(scores upsert, counts increment), for executemany; built once."""
    if not _SQLITE_WRITES:
        ins = sqlite.insert(ST)
        scores = ins.on_conflict_do_update(
            index_elements=["board_id", "period", "dim", "user_id"],
            set_={"score": ins.excluded.score, "reached_at": ins.excluded.reached_at},
        )
        cins = sqlite.insert(CT)
        counts = cins.on_conflict_do_update(
            index_elements=["board_id", "period", "dim", "level", "parent", "key"],
            set_={"n": CT.c.n + cins.excluded.n},
        )
        _SQLITE_WRITES.append((scores, counts))
    return _SQLITE_WRITES[0]


async def add_scores(session: AsyncSession, user_id: int, changes: Sequence[ScoreChange]) -> None:
    """Move one member's scores and keep the rank counts in step (caller holds the member's lock)."""
    await add_scores_many(session, ((user_id, changes),))


async def add_scores_many(session: AsyncSession, items: Sequence[tuple[int, Sequence[ScoreChange]]]) -> None:
    """Move many members' scores and keep the rank counts in step (caller holds every member's lock).

    Changes are merged per (board, period, dim, member) first, so a member appearing in several items is
    moved once; the statements are the same few whatever the number of members.
    """
    merged: dict[ScoreKey, tuple[Decimal, datetime]] = {}
    for user_id, changes in items:
        for ch in changes:
            if ch.delta == 0:
                continue  # scores nothing (a purchase of 0): not on the board for it
            key = (ch.board_id, ch.period, ch.dim, user_id)
            delta, at = merged.get(key, (Decimal(0), ch.at))
            merged[key] = (delta + ch.delta, max(at, ch.at))
    # A key whose changes cancel out (a purchase and its refund in one batch) is still written: the member scored,
    # and is on the board at what the changes add up to, as when the same events come one by one.
    keys = sorted(merged)
    if not keys:
        return
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        params = _arrays("k_", [*_SCORE_NAMES, "delta", "at"], [(*k, *merged[k]) for k in keys])
        emptied = (await conn.execute(_PG_MOVE, params)).scalars().all()
        if emptied:
            # Scores nobody holds any more would otherwise pile up in the exact level and slow its range scans.
            await conn.execute(_PG_DELETE_EMPTY, {"ctids": list(emptied)})
        return
    old = await _current_sqlite(conn, keys)
    score_rows: list[tuple[int, str, str, int, Decimal, datetime]] = []
    counts: dict[CountRow, int] = {}
    for key in keys:
        delta, at = merged[key]
        prev = old.get(key)
        before = prev[0] if prev else None
        after = (before or Decimal(0)) + delta
        # A tie goes to whoever reached that score first, so any change (a refund too) restamps it.
        reached = at if prev is None else max(prev[1], at)
        score_rows.append((*key, after, reached))
        for (level, parent, k), d in ranking.count_deltas(before, after).items():
            ck = (*key[:3], level, parent, k)
            counts[ck] = counts.get(ck, 0) + d
    ordered = sorted((k, n) for k, n in counts.items() if n)  # one lock order for everyone: no deadlocks
    upsert_scores, add_counts = _sqlite_upserts()
    await conn.execute(upsert_scores, [
        {"board_id": b, "period": p, "dim": d, "user_id": u, "score": s, "reached_at": r}
        for b, p, d, u, s, r in score_rows
    ])
    if ordered:
        await conn.execute(add_counts, [
            {"board_id": b, "period": p, "dim": d, "level": lv, "parent": pa, "key": k, "n": n}
            for (b, p, d, lv, pa, k), n in ordered
        ])
    lowered = [k for k, n in ordered if n < 0]
    if lowered:
        await conn.execute(_SQLITE_DELETE_EMPTY, [
            {"b_board_id": b, "b_period": p, "b_dim": d, "b_level": lv, "b_parent": pa, "b_key": k}
            for b, p, d, lv, pa, k in lowered
        ])


async def _take_off_view(
    session: AsyncSession, user_id: int, board_ids: Sequence[int], dim: str, counts: dict[CountRow, int]
) -> None:
    """Delete a member's rows of one view of some boards (every period), noting the count changes in `counts`."""
    removed = (await session.execute(
        delete(ST).where(ST.c.user_id == user_id, ST.c.dim == dim, ST.c.board_id.in_(board_ids))
        .returning(ST.c.board_id, ST.c.period, ST.c.score)
    )).all()
    for board_id, period, score in removed:
        for (level, parent, k), d in ranking.count_deltas(Decimal(str(score)), None).items():
            ck = (board_id, period, dim, level, parent, k)
            counts[ck] = counts.get(ck, 0) + d


async def move_city_view(
    session: AsyncSession, user_id: int, board_ids: Sequence[int], old_dim: str | None, new_dim: str | None
) -> None:
    """A member's city changed: off the old city's view of these boards, and into the new one's with their whole
    score of every period (a city view ranks the members whose profile city it is). Caller holds the member's
    lock, as score writes do.

    The member's own score rows change first; the shared count rows of both cities change last, together, in
    key order, as every other writer of them does (one lock order: no deadlock with another move or a batch)."""
    if not board_ids:
        return
    counts: dict[CountRow, int] = {}
    for dim in sorted({d for d in (old_dim, new_dim) if d}):
        await _take_off_view(session, user_id, board_ids, dim, counts)  # the new one too: rows left from a past stay
    if new_dim is not None:
        whole = (await session.execute(
            select(ST.c.board_id, ST.c.period, ST.c.score, ST.c.reached_at)
            .where(ST.c.user_id == user_id, ST.c.dim == "", ST.c.board_id.in_(board_ids))
        )).all()
        if whole:
            await session.execute(ST.insert(), [
                {"board_id": b, "period": p, "dim": new_dim, "user_id": user_id, "score": score, "reached_at": at}
                for b, p, score, at in whole
            ])
        for board_id, period, score, _at in whole:
            for (level, parent, k), d in ranking.count_deltas(None, Decimal(str(score))).items():
                ck = (board_id, period, new_dim, level, parent, k)
                counts[ck] = counts.get(ck, 0) + d
    ordered = sorted((k, n) for k, n in counts.items() if n)
    if not ordered:
        return
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        # Ordered in SQL, as _PG_MOVE orders its counts: by the database's collation, which a Python sort of the
        # dims need not match (en_US puts "city:alpha" before "city:Zeta", code points the other way round).
        params = _arrays("d_", [*_COUNT_NAMES, "n"], [(*k, n) for k, n in ordered])
        emptied = (await conn.execute(_PG_ADD_COUNTS, params)).scalars().all()
        if emptied:
            await conn.execute(_PG_DELETE_EMPTY, {"ctids": list(emptied)})
        return
    ins = insert_for(session, CT)
    await session.execute(
        ins.on_conflict_do_update(index_elements=list(_COUNT_NAMES), set_={"n": CT.c.n + ins.excluded.n}),
        [{"board_id": b, "period": p, "dim": d, "level": lv, "parent": pa, "key": k, "n": n}
         for (b, p, d, lv, pa, k), n in ordered],
    )
    lowered = [k for k, n in ordered if n < 0]
    if lowered:
        await session.execute(_SQLITE_DELETE_EMPTY, [
            {"b_board_id": b, "b_period": p, "b_dim": d, "b_level": lv, "b_parent": pa, "b_key": k}
            for b, p, d, lv, pa, k in lowered
        ])


async def _current_sqlite(
    conn: AsyncConnection, keys: Sequence[ScoreKey]
) -> dict[ScoreKey, tuple[Decimal, datetime]]:
    rows = await conn.execute(_SQLITE_CURRENT, {"keys": json.dumps(keys)})
    return {(r[0], r[1], r[2], r[3]): (Decimal(r[4]), r[5]) for r in rows}


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


async def latest_period(session: AsyncSession, board_id: int) -> str | None:
    """The latest period of a board that has scores (period ids of one board sort as time does)."""
    stmt = select(func.max(S.period)).where(S.board_id == board_id, S.dim == "")
    return (await session.execute(stmt)).scalar_one_or_none()


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
