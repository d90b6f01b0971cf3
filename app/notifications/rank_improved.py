"""The `rank_improved` check: members who climbed on an active board's whole view in its current period.

A member is told when, measured from the worst rank they held since their last notification on that board, they
entered the top 10 or gained at least LAUREL_RANK_IMPROVED_MIN_PLACES places — at most once a day (program
time) per board. What the check last saw is kept in `leaderboard_rank_snapshots`:

- Only members whose score went up since the last run are looked at: `leaderboard_scores.reached_at` (when the
  score last went up) after the previous run, less a margin for events still in flight. Work follows activity, not
  the board's size. A late event (occurred long before it was ingested) is picked up with the member's next climb.
  Reading that and the watermark (the latest `updated_at` of the period's snapshots) walks the view's rows once
  per run; the snapshots of each page of movers are then fetched by primary key (no join, whose plan on stale
  statistics went quadratic in a 100k-member trial; the key lookups still need the table ANALYZEd, which
  autovacuum does).
- The rank a member held before a climb is the rank their previous score holds *now* (one query on the maintained
  rank counts, see app/leaderboards/ranking.py), so a member who slid down while idle is measured from where they
  really were; `worst_rank` keeps the worst of those since the last notification, so small climbs add up.
- The first time the check sees a board's period, everyone on it is a baseline: no notification (so turning the job
  on, or the first scorers of a new period, do not get "you moved up"). A member who first appears on a period
  the check already follows is news only if they went straight into the top 10 of a board with more than 10.
- Climbs caused by other members' scores going down (refunds) are not looked for.

Idempotent: each snapshot update is conditional on the score the run read (and, for a notification, on not having
been notified today), and the outbox row is written in the same transaction only when that update took.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.clock import utcnow
from app.kit.dialect import insert_for, insert_ignore
from app.leaderboards import repository as lb_repo
from app.leaderboards import scoring
from app.leaderboards import service as lb_service
from app.models import Leaderboard, LeaderboardRankSnapshot, LeaderboardScore, User
from app.outbox import service as outbox

OUTBOX_KIND = "leaderboard.rank_improved"
TOP = 10
# Events are committed a moment after they occurred (and the clock of the job's replica may lag): members whose
# score went up this long before the previous run are looked at again (unchanged ones cost a comparison).
LOOKBACK = timedelta(hours=1)
PAGE = 500
RANK_CHUNK = 32  # scores per rank query; one statement size, so the ranking code builds it once

ST: Table = LeaderboardScore.__table__  # type: ignore[assignment]
NT: Table = LeaderboardRankSnapshot.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Candidate:
    user_id: int
    score: Decimal  # now
    seen: Decimal  # at the last check
    worst_rank: int | None
    notified_on: date | None


def decide(
    seen_rank: int, new_rank: int, worst_rank: int | None, climbed: bool, min_places: int
) -> tuple[int, bool]:
    """(worst rank since the last notification, including this check; whether this climb is worth telling).

    `seen_rank` is the rank the member's previously seen score holds now, `new_rank` the rank of their score.
    """
    worst = max(worst_rank or 0, seen_rank, new_rank)
    if not climbed or new_rank >= worst:
        return worst, False
    return worst, (new_rank <= TOP < worst) or (worst - new_rank >= min_places)


async def check(session: AsyncSession, settings: Settings, now: datetime | None = None) -> int:
    """Run the check over every active board; returns how many `rank_improved` outbox rows were written."""
    now = now or utcnow()
    today = now.astimezone(settings.tz).date()
    boards = await lb_repo.list_all(session)
    written = 0
    for board in boards:
        if board.status != "active":
            # Nothing to announce on a draft or archived board: drop what the check kept for it.
            await session.execute(delete(NT).where(NT.c.board_id == board.id))
            continue
        period = scoring.period_of(board.period, now, settings.tz)
        # Past periods are over; their snapshots are not needed (period ids of one board sort by time).
        await session.execute(delete(NT).where(NT.c.board_id == board.id, NT.c.period < period))
        written += await _check_board(session, settings, board, period, now, today)
    return written


async def _check_board(
    session: AsyncSession, settings: Settings, board: Leaderboard, period: str, now: datetime, today: date
) -> int:
    in_view = [ST.c.board_id == board.id, ST.c.period == period, ST.c.dim == ""]
    last = (await session.execute(
        select(func.max(NT.c.updated_at)).where(NT.c.board_id == board.id, NT.c.period == period)
    )).scalar()
    if last is None:
        # Nothing seen yet (the job was just turned on, or the period just started): everyone is a baseline.
        baseline = select(ST.c.board_id, ST.c.period, ST.c.user_id, ST.c.score,
                          literal(now, NT.c.updated_at.type)).where(*in_view)
        await session.execute(
            insert_for(session, NT)
            .from_select(["board_id", "period", "user_id", "score", "updated_at"], baseline)
            .on_conflict_do_nothing(index_elements=["board_id", "period", "user_id"])
        )
        return 0
    # Whose score went up since the previous run (a pass over the view; what comes back is bounded by activity).
    moved = (await session.execute(
        select(ST.c.user_id, ST.c.score).where(*in_view, ST.c.reached_at > min(last, now) - LOOKBACK)
    )).all()
    written = 0
    for i in range(0, len(moved), PAGE):
        page = {r[0]: Decimal(r[1]) for r in moved[i : i + PAGE]}
        seen = {r[0]: r for r in (await session.execute(
            select(NT.c.user_id, NT.c.score, NT.c.worst_rank, NT.c.notified_on)
            .where(NT.c.board_id == board.id, NT.c.period == period, NT.c.user_id.in_(list(page)))
        )).all()}
        new = [{"board_id": board.id, "period": period, "user_id": uid, "score": score, "updated_at": now}
               for uid, score in page.items() if uid not in seen]
        if new:  # seen for the first time: a baseline (and news only for a newcomer straight into the top 10)
            await session.execute(insert_ignore(session, NT, ["board_id", "period", "user_id"]), new)
            written += await _newcomers(session, board, period, {r["user_id"]: r["score"] for r in new}, now, today)
        batch = [Candidate(uid, score, Decimal(seen[uid][1]), seen[uid][2], seen[uid][3])
                 for uid, score in sorted(page.items()) if uid in seen and Decimal(seen[uid][1]) != score]
        if batch:
            written += await _apply(session, settings, board, period, batch, now, today)
    return written


async def _newcomers(
    session: AsyncSession, board: Leaderboard, period: str, scores: dict[int, Decimal], now: datetime, today: date
) -> int:
    """Members first seen on a period the check already follows who went straight into the top 10 of a board
    with more than 10 members: they "entered the top 10" from off the board. (Before the check follows a period,
    everyone is a baseline: the job turned on, or a new period's first scorers, are not news.)"""
    view = (board.id, period, "")
    _rank, total = await lb_repo.ranks_and_total(session, view, [max(scores.values())])
    if total <= TOP:
        return 0
    above = await _members_above(session, view, set(scores.values()))  # in chunks: one statement size
    entered = sorted((uid, 1 + above[score]) for uid, score in scores.items() if above[score] < TOP)
    if not entered:
        return 0
    external = dict((await session.execute(
        select(User.id, User.external_id).where(User.id.in_([uid for uid, _ in entered]))
    )).all())
    written = 0
    for uid, rank in entered:
        result: Any = await session.execute(
            update(NT)
            .where(NT.c.board_id == board.id, NT.c.period == period, NT.c.user_id == uid,
                   NT.c.score == scores[uid], NT.c.notified_on.is_(None))
            .values(worst_rank=rank, notified_on=today, updated_at=now)
        )
        if result.rowcount != 1:
            continue  # another run got there first
        await outbox.emit(session, OUTBOX_KIND, uid, {
            "user_id": external.get(uid), "board": board.key, "board_name": board.title, "period": period,
            "rank": rank, "previous_rank": None, "places": None, "score": lb_service.num(scores[uid]),
        })
        written += 1
    return written


async def _members_above(session: AsyncSession, view: lb_repo.ViewKey, scores: set[Decimal]) -> dict[Decimal, int]:
    ordered = sorted(scores)
    out: dict[Decimal, int] = {}
    for i in range(0, len(ordered), RANK_CHUNK):
        chunk = ordered[i : i + RANK_CHUNK]
        padded = chunk + [chunk[-1]] * (RANK_CHUNK - len(chunk))
        above = await lb_repo.members_above(session, view, padded)
        out.update(zip(chunk, above, strict=False))
    return out


_SAVE = update(NT).where(
    NT.c.board_id == bindparam("b_board_id"), NT.c.period == bindparam("b_period"),
    NT.c.user_id == bindparam("b_user_id"), NT.c.score == bindparam("b_seen"),
).values(score=bindparam("b_score"), worst_rank=bindparam("b_worst"), updated_at=bindparam("b_now"))


async def _apply(
    session: AsyncSession, settings: Settings, board: Leaderboard, period: str, batch: list[Candidate],
    now: datetime, today: date,
) -> int:
    above = await _members_above(session, (board.id, period, ""), {c.score for c in batch} | {c.seen for c in batch})
    quiet: list[dict[str, Any]] = []
    told: list[tuple[Candidate, int, int]] = []
    for c in batch:
        new_rank = 1 + above[c.score]
        # The member's own row counts as "above" their previous score when they climbed past it.
        seen_rank = 1 + above[c.seen] - (1 if c.score > c.seen else 0)
        worst, worth = decide(seen_rank, new_rank, c.worst_rank, c.score > c.seen, settings.rank_improved_min_places)
        if worth and c.notified_on != today:
            told.append((c, worst, new_rank))
        else:
            # A climb held back by the once-a-day rule keeps its starting point for the next climb.
            quiet.append({"b_board_id": board.id, "b_period": period, "b_user_id": c.user_id, "b_seen": c.seen,
                          "b_score": c.score, "b_worst": worst, "b_now": now})
    if quiet:
        await session.execute(_SAVE, quiet)
    if not told:
        return 0
    external = dict((await session.execute(
        select(User.id, User.external_id).where(User.id.in_([c.user_id for c, _, _ in told]))
    )).all())
    written = 0
    for c, worst, new_rank in told:
        result: Any = await session.execute(
            update(NT)
            .where(NT.c.board_id == board.id, NT.c.period == period, NT.c.user_id == c.user_id,
                   NT.c.score == c.seen, or_(NT.c.notified_on.is_(None), NT.c.notified_on != today))
            .values(score=c.score, worst_rank=new_rank, notified_on=today, updated_at=now)
        )
        if result.rowcount != 1:
            continue  # another run got there first
        await outbox.emit(session, OUTBOX_KIND, c.user_id, {
            "user_id": external.get(c.user_id), "board": board.key, "board_name": board.title, "period": period,
            "rank": new_rank, "previous_rank": worst, "places": worst - new_rank,
            "score": lb_service.num(c.score),
        })
        written += 1
    return written
