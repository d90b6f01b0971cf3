"""Leaderboard definitions (admin), the member's ranked view with privacy applied, and admin reports."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, InvalidInput, NotFound
from app.kit.cache import DefinitionCache
from app.kit.clock import shown, utcnow
from app.kit.schemas import unstorable_path
from app.kit.spreadsheet import safe_text
from app.leaderboards import repository as lb_repo
from app.leaderboards import scoring
from app.leaderboards.schemas import (
    AdminEntry,
    AdminTop,
    Bin,
    BoardSummary,
    BoardView,
    Distribution,
    LeaderboardCreate,
    LeaderboardOut,
    LeaderboardReplace,
    LeaderboardUpdate,
    Me,
    Metric,
    PeriodStat,
    Preferences,
)
from app.models import Leaderboard, User
from app.users import repository as users_repo

log = logging.getLogger("laurel.leaderboards")

NEIGHBOURS = 2
OPT_OUT = "leaderboard_opt_out"


class LeaderboardNotFound(NotFound):
    code = "leaderboard_not_found"


@dataclass(frozen=True)
class BoardInfo:
    """What a member view needs of a board; cached briefly per process (see `board_for_members`)."""

    id: int
    key: str
    title: str
    status: str
    period: str
    dimensions: tuple[str, ...]
    display: dict[str, Any]
    privacy: str
    min_group_size: int


_BOARDS: dict[str, tuple[float, BoardInfo | None]] = {}


async def board_for_members(session: AsyncSession, settings: Settings, key: str) -> BoardInfo | None:
    """The board by key, from a per-process cache of LAUREL_LEADERBOARD_CACHE_SECONDS (admin changes made
    through this process clear it at once; other replicas see them within that time)."""
    now = time.monotonic()
    hit = _BOARDS.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    board = await lb_repo.by_key(session, key)
    info = None if board is None else BoardInfo(
        id=board.id, key=board.key, title=board.title, status=board.status, period=board.period,
        dimensions=tuple(board.dimensions), display=dict(board.display or {}), privacy=board.privacy,
        min_group_size=board.min_group_size,
    )
    if settings.leaderboard_cache_seconds > 0:
        if len(_BOARDS) > 10_000:
            _BOARDS.clear()
        _BOARDS[key] = (now + settings.leaderboard_cache_seconds, info)
    return info


async def _load_active(session: AsyncSession) -> list[scoring.ActiveBoard]:
    boards = []
    for row in await lb_repo.active_rows(session):
        try:
            boards.append(scoring.parse(row))
        except ValidationError:  # a stored metric that no longer validates must not stop all ingestion
            log.exception("leaderboard %r has a stored metric that does not validate; it is not scored", row.key)
    return boards


# What ingestion scores against, cached briefly so events do not reload boards one by one.
ACTIVE_BOARDS: DefinitionCache[list[scoring.ActiveBoard]] = DefinitionCache(_load_active)


def forget(session: AsyncSession, key: str) -> None:
    """A board changed in this transaction: dropped from the caches now and again at commit."""
    _BOARDS.pop(key, None)
    ACTIVE_BOARDS.invalidate_with(session)
    event.listen(session.sync_session, "after_commit", lambda _s: _BOARDS.pop(key, None), once=True)


def forget_all() -> None:
    _BOARDS.clear()
    ACTIVE_BOARDS.invalidate()


def num(value: Decimal) -> int | float:
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


# --------------------------------------------------------------------------- admin: definitions


def to_out(board: Leaderboard, settings: Settings) -> LeaderboardOut:
    return LeaderboardOut.model_validate({
        "key": board.key, "title": board.title, "description": board.description, "icon": board.icon,
        "metric": board.metric, "period": board.period, "dimensions": board.dimensions, "display": board.display,
        "privacy": board.privacy, "min_group_size": board.min_group_size, "status": board.status,
        "current_period": scoring.period_of(board.period, utcnow(), settings.tz),
        "created_at": board.created_at, "updated_at": board.updated_at,
    })


async def list_all(session: AsyncSession, status: str | None) -> Sequence[Leaderboard]:
    return await lb_repo.list_all(session, status)


async def get(session: AsyncSession, key: str) -> Leaderboard:
    board = await lb_repo.by_key(session, key)
    if board is None:
        raise LeaderboardNotFound(f"No leaderboard {key!r}", details={"key": key})
    return board


async def create(session: AsyncSession, body: LeaderboardCreate) -> Leaderboard:
    if await lb_repo.by_key(session, body.key) is not None:
        raise Conflict(f"A leaderboard with key {body.key!r} exists", code="leaderboard_exists",
                       details={"key": body.key})
    board = Leaderboard(**body.model_dump(mode="json"))
    session.add(board)
    await session.flush()
    forget(session, board.key)
    return board


async def replace(session: AsyncSession, key: str, body: LeaderboardReplace) -> Leaderboard:
    if body.key is not None and body.key != key:
        raise InvalidInput("The body's key must match the path (keys cannot be renamed)", code="key_mismatch")
    fields = body.model_dump(mode="json", exclude={"key"})
    if fields["status"] is None:  # a replacement that does not mention the status keeps it
        del fields["status"]
    return await _apply(session, await get(session, key), fields)


async def update(session: AsyncSession, key: str, body: LeaderboardUpdate) -> Leaderboard:
    fields = {k: v for k, v in body.model_dump(mode="json", exclude_unset=True).items()}
    # A nested model is one value: stored whole, with its defaults, as a create or PUT stores it (left partial, a
    # metric without `where` would differ from the same metric read back, and a board with scores refuse it).
    for name in ("metric", "display"):
        value = getattr(body, name)
        if value is not None:
            fields[name] = value.model_dump(mode="json")
    for name in ("title", "description", "metric", "period", "dimensions", "display", "privacy", "min_group_size",
                 "status"):
        if name in fields and fields[name] is None:
            raise InvalidInput(f"Invalid request: body.{name}: cannot be null", code="validation_error",
                               details=[{"field": f"body.{name}", "message": "cannot be null"}])
    return await _apply(session, await get(session, key), fields)


async def _apply(session: AsyncSession, board: Leaderboard, fields: dict[str, Any]) -> Leaderboard:
    stored = {"metric": Metric.model_validate(board.metric).model_dump(mode="json"), "period": board.period}
    changes_meaning = any(name in fields and fields[name] != stored[name] for name in ("metric", "period"))
    if changes_meaning and await lb_repo.has_scores(session, board.id):
        # Mixing two measures in one set of scores would make every rank meaningless.
        raise Conflict("This board already has scores; its metric and period cannot change. Create a new board.",
                       code="leaderboard_has_scores")
    # A city or attribute view holds only the scores of events ingested while it was listed: one added to a board
    # with scores would start empty mid-period (and one dropped and listed again would miss the gap) while the
    # whole board counts everything. Dropping a view is fine; friends are read from the whole board's scores.
    added = [d for d in fields.get("dimensions") or () if d not in (board.dimensions or ()) and d != "friends"]
    if added and await lb_repo.has_scores(session, board.id):
        raise Conflict(
            f"This board already has scores; a new view ({', '.join(added)}) would miss them. Create a new board.",
            code="leaderboard_has_scores", details={"dimensions": added},
        )
    for name, value in fields.items():
        setattr(board, name, value)
    await session.flush()
    await session.refresh(board)
    forget(session, board.key)
    return board


async def delete(session: AsyncSession, key: str) -> None:
    await lb_repo.delete_board(session, await get(session, key))
    forget(session, key)


# --------------------------------------------------------------------------- member views


def mask(board_key: str, user_id: int) -> str:
    digest = hashlib.sha256(f"{board_key}:{user_id}".encode()).hexdigest()[:4].upper()
    return f"Member ·{digest}"


def _entry(board: BoardInfo, row: Row[Any], rank: int, me_id: int, names: bool) -> dict[str, Any]:
    is_me = row.user_id == me_id
    opted_out = bool((row.preferences or {}).get(OPT_OUT))
    masked = not is_me and (board.privacy == "anonymous" or opted_out or not names)
    entry: dict[str, Any] = {"rank": rank, "score": num(row.score)}
    display = board.display or {}
    if display.get("nickname", True):
        entry["nickname"] = mask(board.key, row.user_id) if masked else row.nickname
    if display.get("avatar", True):
        entry["avatar_url"] = None if masked else row.avatar_url
        entry["avatar"] = entry["avatar_url"]  # named like the board's display switch, too
    if display.get("tier", False):
        entry["tier"] = None if masked else row.tier
    entry["masked"] = masked
    entry["is_me"] = is_me
    return entry


def _competition_ranks(rows: Sequence[Row[Any]]) -> list[int]:
    """1,1,3 ranks for rows already in display order, starting at the top."""
    ranks: list[int] = []
    for i, r in enumerate(rows):
        ranks.append(ranks[-1] if i and r.score == rows[i - 1].score else i + 1)
    return ranks


def summaries(boards: Sequence[Leaderboard], settings: Settings) -> list[BoardSummary]:
    now, tz = utcnow(), settings.tz
    out = []
    for b in boards:
        current = scoring.period_of(b.period, now, tz)
        start, end = scoring.bounds(b.period, current, tz)
        out.append(BoardSummary(
            key=b.key, title=b.title, description=b.description, icon=b.icon, metric=b.metric["type"],
            period=b.period, current_period=current, period_start=start, period_end=end,
            dimensions=list(b.dimensions), privacy=b.privacy,
        ))
    return out


async def active_boards(session: AsyncSession, settings: Settings) -> list[BoardSummary]:
    return summaries(await lb_repo.list_all(session, "active"), settings)


def _admin_filter(board: Leaderboard, filters: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    """An operator's view: the whole board, or a city or attribute view; friends are a member's own view."""
    asked = next((name for name in ("scope", "friends") if name in (filters or {})), None)
    if asked is not None:
        raise InvalidInput("scope=friends is a member's own view; read the whole board or a city or attribute view",
                           code="member_view_only",
                           details=[{"field": f"query.{asked}", "message": "not for operators"}])
    return _resolve_filter(board, filters or {}, None)


def _resolve_filter(
    board: BoardInfo | Leaderboard, filters: dict[str, str], scope: str | None
) -> tuple[str, dict[str, str]]:
    """The view's dim and the filter echoed back; one filter at a time, and only a dimension the board has. A
    parameter whose name starts with "_" and is no dimension of the board (a client's cache buster, `_t=…`) is
    ignored rather than refused."""
    chosen = {k: v for k, v in filters.items() if v and not (k.startswith("_") and k not in board.dimensions)}
    if scope is not None:
        chosen["scope"] = scope
    if len(chosen) > 1:
        raise InvalidInput("Use one filter at a time (city, an attribute dimension, or scope=friends)",
                           code="too_many_filters", details={"filters": sorted(chosen)})
    if not chosen:
        return "", {}
    name, value = next(iter(chosen.items()))
    flaw = unstorable_path(value, f"query.{name}")
    if flaw is not None:
        # Refused here, before a CSV export starts streaming: the database would refuse it only mid-response.
        raise InvalidInput(f"{flaw[0]} holds {flaw[1]}", code="invalid_value",
                           details=[{"field": flaw[0], "message": f"holds {flaw[1]}"}])
    if name == "friends":
        # A dimension with no values: "friends:1" is a view no event lands in, answered as if it were the friends view.
        raise InvalidInput("friends is not a filter value; ask for scope=friends", code="invalid_value",
                           details=[{"field": "query.friends", "message": "use scope=friends"}])
    wanted = "friends" if name == "scope" else name
    if wanted not in board.dimensions:
        raise InvalidInput(f"Board {board.key!r} has no {wanted!r} dimension", code="unknown_dimension",
                           details={"dimension": wanted, "dimensions": board.dimensions})
    if name == "scope":
        return "", chosen
    dim = f"{name}:{value}"
    if len(dim) > scoring.MAX_DIM_LENGTH:
        # No event can land in such a view (scoring.attribute_view). Refused, not dropped: dropping it answered
        # with the whole board as if it were the view asked for.
        most = scoring.MAX_DIM_LENGTH - len(name) - 1
        raise InvalidInput(f"query.{name} is longer than {most} characters", code="invalid_value",
                           details=[{"field": f"query.{name}", "message": f"at most {most} characters"}])
    return dim, chosen


async def member_city_changed(session: AsyncSession, user_id: int, old: str | None, new: str | None) -> None:
    """A city view ranks the members whose profile city it is: a member who moves leaves the old city's view of
    every board with one (every period) and joins the new one's with their whole score. Caller holds the
    member's lock."""
    boards = [b.id for b in await lb_repo.list_all(session) if "city" in (b.dimensions or [])]
    await lb_repo.move_city_view(session, user_id, boards, scoring.city_view(old), scoring.city_view(new))


async def view(
    session: AsyncSession, settings: Settings, user: User, key: str, *, period: str, filters: dict[str, str],
    scope: str | None, limit: int, offset: int,
) -> BoardView:
    board = await board_for_members(session, settings, key)
    if board is None or board.status == "draft":
        raise LeaderboardNotFound(f"No leaderboard {key!r}", details={"key": key})
    requested = period or "current"  # an empty `period=` is the default, as an empty `city=` is no filter
    if board.status == "archived" and requested == "current":
        # An archived board's current period is empty (nothing scores on it any more): it opens on its final
        # standings, the latest period that has scores.
        requested = await lb_repo.latest_period(session, board.id) or requested
    try:
        period_id = scoring.resolve_period(board.period, requested, utcnow(), settings.tz)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_period", details={"period": period}) from None
    dim, echoed = _resolve_filter(board, filters, scope)
    view_key = (board.id, period_id, dim)
    start, end = scoring.bounds(board.period, period_id, settings.tz)
    if scope == "friends":
        entries, me, total = await _friends(session, board, view_key, user, limit, offset)
    else:
        entries, me, total = await _ranked(session, board, view_key, user, limit, offset)
    return BoardView(board=board.key, title=board.title, period=period_id, period_start=start, period_end=end,
                     filter=echoed, entries=entries, me=me, total=total, limit=limit, offset=offset)


async def _ranked(
    session: AsyncSession, board: BoardInfo, view_key: lb_repo.ViewKey, user: User, limit: int, offset: int
) -> tuple[list[dict[str, Any]], Me | None, int]:
    found = await lb_repo.page(session, view_key, user.id, limit, offset, NEIGHBOURS)
    rows, mine, above, below = found.rows, found.mine, found.above, found.below
    wanted: list[Decimal] = []
    if mine is not None:
        wanted = [mine.score, *(r.score for r in above), *(r.score for r in below)]
    if rows and offset:
        wanted.append(rows[0].score)
    ranks, total = await lb_repo.ranks_and_total(session, view_key, wanted)
    # Small filtered groups would make members identifiable: no names unless the view is big enough.
    names = view_key[2] == "" or total >= board.min_group_size
    entries: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        if i and r.score == rows[i - 1].score:
            rank = entries[-1]["rank"]
        elif i == 0:
            rank = ranks[r.score] if offset else 1
        else:
            rank = offset + i + 1  # first of its score on this page: everyone before it scored more
        entries.append(_entry(board, r, rank, user.id, names))
    me = None
    if mine is not None:
        me = Me(
            rank=ranks[mine.score], score=num(mine.score),
            above=[_entry(board, r, ranks[r.score], user.id, names) for r in above],
            below=[_entry(board, r, ranks[r.score], user.id, names) for r in below],
        )
    return entries, me, total


async def _friends(
    session: AsyncSession, board: BoardInfo, view_key: lb_repo.ViewKey, user: User, limit: int, offset: int
) -> tuple[list[dict[str, Any]], Me | None, int]:
    """The member and their friends, ranked among themselves on the whole-board scores."""
    ids = [user.id, *await users_repo.friend_ids(session, user.id)]
    rows = await lb_repo.friends_rows(session, view_key, ids)
    ranks = _competition_ranks(rows)
    entries = [_entry(board, r, ranks[i], user.id, True) for i, r in enumerate(rows)][offset:offset + limit]
    me = None
    for i, r in enumerate(rows):
        if r.user_id == user.id:
            me = Me(
                rank=ranks[i], score=num(r.score),
                above=[_entry(board, rows[j], ranks[j], user.id, True) for j in range(max(0, i - NEIGHBOURS), i)],
                below=[_entry(board, rows[j], ranks[j], user.id, True)
                       for j in range(i + 1, min(len(rows), i + 1 + NEIGHBOURS))],
            )
    return entries, me, len(rows)


# --------------------------------------------------------------------------- preferences


def preferences(user: User) -> Preferences:
    return Preferences(leaderboard_opt_out=bool((user.preferences or {}).get(OPT_OUT)))


async def set_preferences(session: AsyncSession, user: User, opt_out: bool) -> Preferences:
    user.preferences = {**(user.preferences or {}), OPT_OUT: opt_out}  # a new dict, so the JSON change is seen
    await session.flush()
    return preferences(user)


# --------------------------------------------------------------------------- admin reports


async def _admin_period(session: AsyncSession, board: Leaderboard, period: str | None, settings: Settings) -> str:
    """The period an admin view reads: an archived board's current period is its latest with scores (its final
    standings), as members see it."""
    requested = period or "current"
    if board.status == "archived" and requested == "current":
        requested = await lb_repo.latest_period(session, board.id) or requested
    try:
        return scoring.resolve_period(board.period, requested, utcnow(), settings.tz)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_period", details={"period": period}) from None


async def periods(session: AsyncSession, settings: Settings, key: str) -> list[PeriodStat]:
    board = await get(session, key)
    out = []
    for period_id, n in await lb_repo.participants_per_period(session, board.id):
        start, end = scoring.bounds(board.period, period_id, settings.tz)
        out.append(PeriodStat(period=period_id, period_start=start, period_end=end, participants=n))
    return out


async def distribution(
    session: AsyncSession, settings: Settings, key: str, period: str | None, bins: int,
    filters: dict[str, str] | None = None,
) -> Distribution:
    """Equal-width histogram of the period's scores (of the whole board or one view); each bin count comes from the
    rank aggregate."""
    board = await get(session, key)
    period_id = await _admin_period(session, board, period, settings)
    dim, echoed = _admin_filter(board, filters)
    view_key = (board.id, period_id, dim)
    lo, hi = await lb_repo.extremes(session, view_key)
    _, total = await lb_repo.ranks_and_total(session, view_key, [])
    if lo is None or hi is None:
        return Distribution(board=board.key, period=period_id, filter=echoed, participants=0, min=None, max=None,
                            bins=[])
    if lo == hi:
        bins = 1
    width = (hi - lo) / bins
    edges = [lo + width * i for i in range(bins)] + [hi]
    above = await lb_repo.members_above(session, view_key, edges[1:-1])
    # Bins are [e0, e1], (e1, e2], …: counts from "members above each inner edge".
    cumulative = [total, *above, 0]
    out = [Bin(low=num(edges[i]), high=num(edges[i + 1]), count=cumulative[i] - cumulative[i + 1])
           for i in range(bins)]
    return Distribution(board=board.key, period=period_id, filter=echoed, participants=total, min=num(lo),
                        max=num(hi), bins=out)


async def admin_top(
    session: AsyncSession, settings: Settings, key: str, period: str | None, limit: int,
    filters: dict[str, str] | None = None,
) -> AdminTop:
    board = await get(session, key)
    period_id = await _admin_period(session, board, period, settings)
    dim, echoed = _admin_filter(board, filters)
    view_key = (board.id, period_id, dim)
    rows = await lb_repo.admin_page(session, view_key, limit)
    _, total = await lb_repo.ranks_and_total(session, view_key, [])
    ranks = _competition_ranks(rows)
    entries = [AdminEntry(rank=ranks[i], user_id=r.external_id, nickname=r.nickname, city=r.city,
                          score=num(r.score), reached_at=r.reached_at) for i, r in enumerate(rows)]
    return AdminTop(board=board.key, period=period_id, filter=echoed, total=total, entries=entries)


async def export_target(
    session: AsyncSession, settings: Settings, key: str, period: str | None, filters: dict[str, str] | None = None
) -> tuple[lb_repo.ViewKey, str]:
    """(view, file name stem) after checking the board, period and view; the rows are streamed by `export_rows`."""
    board = await get(session, key)
    dim, _echoed = _admin_filter(board, filters)
    period_id = await _admin_period(session, board, period, settings)
    stem = f"{board.key}-{period_id}" + (f"-{re.sub(r'[^A-Za-z0-9_.-]', '_', dim.split(':', 1)[1])}" if dim else "")
    return (board.id, period_id, dim), stem


async def export_rows(
    sessionmaker: Any, view_key: lb_repo.ViewKey, page_size: int = 5000, prefix: str = ""
) -> AsyncIterator[str]:
    """CSV lines in rank order, read in keyset pages, each page in its own short transaction; `prefix` before the
    header (a byte-order mark for Excel)."""
    yield prefix + "rank,user_id,nickname,city,score,reached_at\r\n"
    after = None
    position, rank, last = 0, 0, None
    while True:
        async with sessionmaker() as session:
            rows = await lb_repo.admin_page(session, view_key, page_size, after)
        if not rows:
            return
        buf = io.StringIO()
        writer = csv.writer(buf)
        for r in rows:
            position += 1
            if r.score != last:
                rank, last = position, r.score
            writer.writerow([rank, safe_text(r.external_id), safe_text(r.nickname), safe_text(r.city), num(r.score),
                             shown(r.reached_at)])
        yield buf.getvalue()
        tail = rows[-1]
        after = (tail.score, tail.reached_at, tail.user_id)
