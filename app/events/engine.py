"""One engine run: everything an event (or a manual grant) causes for one member, in one transaction.

The run holds the member's row lock, so counters, awards, credits and levels for a member are evaluated one
event at a time. Reads and writes go through the transaction's EngineStore (app/events/store.py): a
member's held badges, levels and counters are read once, and awards, credits, levels, award events and
outbox rows are buffered and written with one statement per table when the store is flushed. "Is this
award / level / credit new?" is decided against rows read under the lock; the unique constraints on
(user, badge, award_key), (source_type, source_id) and (user, rank) remain the last line of defence.
Awards and levels reached become events (`badge.awarded`, `level.reached`) that rules can count. A badge does
not count its own award event, and is not awarded for an event that descends from its own award (through the
points, levels or badges that award caused), though it counts it: a repeatable badge counting `level.reached`
would otherwise climb the whole ladder on one event. So every award on a chain is of a badge not yet on it, and
a level is reached once: a chain is at most as long as the active badges and the ladder (plus MAX_DEPTH for what
challenges reward), which is where it is cut should anything else ever loop. The chains of one event are bounded in
number too (MAX_DEPTH award events followed per active badge and level): repeatable badges that each count the
others' awards branch into every ordering of themselves, a factorial number of awards for one event.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.badges import repository as badges_repo
from app.badges import rules_cache
from app.badges.rules_cache import BadgeRule, RuleSet
from app.config import Settings
from app.events import hooks
from app.events import repository as events_repo
from app.events.record import CreditRecord, EventRecord, MemberRecord
from app.events.schemas import MAX_FUTURE
from app.events.store import EngineStore, store_for
from app.kit.clock import shown, utcnow
from app.kit.periods import key_ordinal, ordinal_key, period_key, period_ordinal
from app.models import Badge, User, UserBadge
from app.points import levels as levels_service
from app.rules import evaluator as ev
from app.rules.criteria import CalendarWindow, Criterion, FixedWindow, RollingWindow, threshold_decimal
from app.users import repository as users_repo

log = logging.getLogger("laurel.engine")

MAX_DEPTH = 4
BADGE_AWARDED = "badge.awarded"


def num(value: Decimal) -> int | float:
    """JSON-friendly number: integers stay integers."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class Outcome:
    points_credited: int = 0
    badges_awarded: list[dict[str, Any]] = field(default_factory=list)
    levels_reached: list[dict[str, Any]] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)
    challenges: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "points_credited": self.points_credited,
            "badges_awarded": self.badges_awarded,
            "levels_reached": self.levels_reached,
            "progress": self.progress,
            "challenges": self.challenges,
        }


class EngineRun:
    """Engine work for one member inside the caller's transaction; create it with `begin`."""

    def __init__(self, session: AsyncSession, settings: Settings, user: User | MemberRecord) -> None:
        self.session = session
        self.settings = settings
        self.tz = settings.tz
        self.user = user
        self.store: EngineStore = store_for(session)
        self.outcome = Outcome()
        self.extras: dict[str, Any] = {}  # per-run caches for listeners (challenges, leaderboards)
        self._rules: RuleSet | None = None
        self._pending: deque[tuple[EventRecord, frozenset[int], int]] = deque()
        self._draining = False
        self.depth = 0
        self.chain: frozenset[int] = frozenset()  # badges whose awards caused the event being evaluated
        self._followed = 0  # award events queued for evaluation since the event processed (see _depth_limit)

    @classmethod
    async def begin(cls, session: AsyncSession, settings: Settings, user: User | MemberRecord) -> EngineRun:
        """Lock the member and refresh the balance and city (another request may have just changed them: the
        member was read before the lock was granted, and a city move waits for no one else's scores)."""
        points, city = await users_repo.lock_member_state(session, user.id)
        if isinstance(user, MemberRecord):
            user.points, user.city = points, city
        else:
            set_committed_value(user, "points", points)
            set_committed_value(user, "city", city)
        return cls(session, settings, user)

    # ------------------------------------------------------------------ events

    async def process(self, event: EventRecord) -> None:
        """Evaluate an event and everything it causes (award events included), then run listeners."""
        if not self._draining:
            self._followed = 0  # the bound on award events followed is per event (a batch runs many per member)
        self._pending.append((event, self.chain, self.depth))
        await self.settle()

    async def settle(self) -> None:
        """Evaluate the award and level events queued so far, and what they cause in turn.

        `process` settles by itself; a caller that awards or credits outside it (a manual grant, an admin's
        points adjustment) settles before it returns, so those `badge.awarded` and `level.reached` events
        count for badges, challenges and leaderboards like any other."""
        if self._draining:
            return
        self._draining = True
        try:
            while self._pending:
                current, chain, depth = self._pending.popleft()
                outer = self.depth, self.chain
                self.depth, self.chain = depth, chain
                try:
                    await self._evaluate_badges(current, chain)
                    for listener in hooks.EVENT_LISTENERS:
                        await listener(self, current)
                finally:
                    self.depth, self.chain = outer
        finally:
            self._draining = False

    async def withdraw_award_event(self, award: UserBadge) -> None:
        """A revoked award's `badge.awarded` event no longer counts: it is taken back out of the badge counters
        it moved (a Collector's) and out of what listeners can take it back from (the badges leaderboards).
        Challenge steps it completed stay completed (see README, Known limits)."""
        event = await events_repo.record_by_key(self.session, f"laurel:badge.awarded:{award.id}")
        if event is None:
            return
        await self._uncount(event, [(str(p[0]), str(p[1])) for p in award.counted_in or ()])
        for listener in hooks.WITHDRAW_LISTENERS:
            await listener(self, event)

    async def forget_counters(self, scope_prefix: str) -> None:
        """Clear the member's counters whose scope starts with a badge's prefix (every criterion, every bucket):
        a revoke that resets progress."""
        self.store.forget_counters(self.user.id, scope_prefix)
        await badges_repo.delete_counters(self.session, self.user.id, scope_prefix)

    async def _uncount(self, event: EventRecord, counted: list[tuple[str, str]]) -> None:
        """Retract the event from the counters it moved. A distinct value or streak period stays while another
        standing award's event of the same counter supplies it; awards made before counters were recorded are
        assumed to count wherever they match."""
        criteria = await rules_cache.criteria_by_scope(self.session)
        counted = [(scope, bucket) for scope, bucket in counted if scope in criteria]
        if not counted:
            return
        standing: list[tuple[list[list[str]] | None, EventRecord]] = []
        if any(criteria[scope].aggregate in ("count_distinct", "streak") for scope, _b in counted):
            revoked = event.attributes.get("award_id")
            awards = [a for a in await badges_repo.awards_of(self.session, self.user.id) if a.id != revoked]
            records = await events_repo.records_by_keys(
                self.session, [f"laurel:badge.awarded:{a.id}" for a in awards]
            )
            by_award = {r.attributes.get("award_id"): r for r in records}
            standing = [(a.counted_in, by_award[a.id]) for a in awards if a.id in by_award]
        states = await self.store.counters(self.user.id, counted)
        for scope, bucket in counted:
            c = criteria[scope]
            others = [
                (r.occurred_at, r.attributes)
                for counted_in, r in standing
                if ([scope, bucket] in counted_in if counted_in is not None
                    else ev.matches(c, r.type, r.attributes) and ev.bucket_for(c, r.occurred_at, self.tz) == bucket)
            ]
            before = states.get((scope, bucket), ev.EMPTY)
            after = ev.retract(c, before, event.occurred_at, event.attributes, self.tz, others)
            if after != before:
                self.store.set_counter(self.user.id, scope, bucket, after)

    async def _synthetic(self, type_: str, key: str, attributes: dict[str, Any], at: datetime) -> None:
        """Store an award as an event (so rules can count it) and queue it for evaluation."""
        fields: dict[str, Any] = {
            "idempotency_key": f"laurel:{key}",
            "user_id": self.user.id,
            "type": type_,
            "source": events_repo.INTERNAL_SOURCE,
            "occurred_at": at,
            "received_at": utcnow(),
            "attributes": attributes,
        }
        event = EventRecord(id=await self.store.add_event(fields), **fields)
        limit = await self._depth_limit()
        if self.depth < limit and self._followed < MAX_DEPTH * limit:
            self._followed += 1
            self._pending.append((event, self.chain, self.depth + 1))
        elif self.depth < limit and self._followed == MAX_DEPTH * limit:
            self._followed += 1  # warned once per event
            log.warning("award events left unevaluated: as many as an event may cause were followed",
                        extra={"fields": {"user_id": self.user.id, "followed": MAX_DEPTH * limit}})

    async def _depth_limit(self) -> int:
        """How deep a chain of award events is followed: never shorter than the chain rule allows (each award on a
        chain is of another badge, each level is reached once), so a tower of collectors is counted to its top.
        An event has at most MAX_DEPTH times as many award events followed: the chain rule bounds each chain, not
        how many there are (repeatable badges counting each other's awards branch into every ordering)."""
        return len((await self.rules()).badges) + levels_service.MAX_LEVELS + MAX_DEPTH

    # ------------------------------------------------------------------ badges

    async def rules(self) -> RuleSet:
        if self._rules is None:
            self._rules = await rules_cache.auto_awardable(self.session)
        return self._rules

    async def _evaluate_badges(self, event: EventRecord, chain: frozenset[int]) -> None:
        at = event.occurred_at
        type_, attributes = event.type, event.attributes
        badges = (await self.rules()).for_type(type_)
        if not badges:
            return  # most event types move no badge: no further queries
        held = await self.store.awards(self.user.id)  # badge id → award keys
        touched: list[tuple[BadgeRule, Sequence[tuple[str, Criterion]], list[tuple[str, Criterion, str]]]] = []
        wanted: set[tuple[str, str]] = set()
        # The buckets each criterion's decision reads, by (scope, later): computed once per event, used twice.
        read: dict[tuple[str, bool], list[str]] = {}
        for badge in badges:
            if (not badge.repeatable and badge.id in held) or not in_season(badge, at):
                continue
            if type_ == BADGE_AWARDED and attributes.get("badge") == badge.key:
                continue  # a badge's own award is not one of the awards it counts
            crits = badge.criteria
            matched: list[tuple[str, Criterion, str]] = []
            seen: set[str] = set()
            for scope, c in crits:
                if scope in seen or not ev.matches(c, type_, attributes):
                    continue
                bucket = ev.bucket_for(c, at, self.tz)
                if bucket is not None:
                    matched.append((scope, c, bucket))
                    seen.add(scope)
            if not matched:
                continue
            touched.append((badge, crits, matched))
            wanted.update((scope, bucket) for scope, _c, bucket in matched)
            later = len(crits) == 1
            for scope, c in crits:
                buckets = read.get((scope, later))
                if buckets is None:
                    buckets = read[(scope, later)] = reads(c, at, self.tz, later)
                wanted.update((scope, b) for b in buckets)
        if not touched:
            return
        states = await self.store.counters(self.user.id, wanted)
        # An award event's counters are recorded with its award, for a revoke to take it back out of them.
        counted: list[list[str]] | None = [] if type_ == BADGE_AWARDED else None
        moved: set[str] = set()  # the criteria whose state this event changed: the progress it reports
        for _badge, _crits, matched in touched:
            for scope, c, bucket in matched:
                before = states.get((scope, bucket), ev.EMPTY)
                after = ev.apply(c, before, at, event.attributes, self.tz)
                if after != before:
                    if ev.moved(c, before, after):
                        moved.add(scope)
                    states[(scope, bucket)] = after
                    self.store.set_counter(self.user.id, scope, bucket, after)
                    if counted is not None:
                        counted.append([scope, bucket])
        if counted and isinstance(attributes.get("award_id"), int):
            await self.store.note_counted(attributes["award_id"], counted)
        for badge, criteria, matched in touched:
            # A late event may complete a later rolling window (see ev.decisive) only where the badge has that one
            # criterion; a badge of several is judged at the event's instant (README, Known limits).
            later = len(criteria) == 1
            subs = [{b: states.get((scope, b), ev.EMPTY) for b in read[(scope, later)]} for scope, _c in criteria]
            decided = [ev.decisive(c, sub, at, self.tz, later) for (_s, c), sub in zip(criteria, subs, strict=True)]
            mets = [ev.is_met(c, value) for (_s, c), (value, _when) in zip(criteria, decided, strict=True)]
            if all(mets):
                if badge.id in chain:
                    # Counted, but not awarded: this event descends from the badge's own award (through the
                    # points, levels or badges that award caused), and an award never re-triggers itself.
                    continue
                award_key = repeat_key(badge, criteria, subs, at, self.tz, held.get(badge.id, ()))
                if award_key is None or award_key in held.get(badge.id, ()):
                    # Met, but what it earns is already held (a streak run's multiples, a window's day). A badge
                    # earned once per multiple of a lifetime threshold reports the way to its next multiple.
                    if badge.repeatable and next_multiple(criteria):
                        self._report(badge, criteria, matched, moved, decided, toward_next=True)
                    continue
                # The window the award is keyed by: a repeatable badge passes over days already rewarded.
                skip = rewarded_days(held.get(badge.id, ()), self.tz) if badge.repeatable else None
                evidence = [
                    self._evidence(index, c, sub, met, at, later, skip)
                    for index, ((_s, c), sub, met) in enumerate(zip(criteria, subs, mets, strict=True))
                ]
                await self.award_badge(
                    badge,
                    award_key=award_key,
                    source="rule",
                    event=event,
                    evidence={"criteria": evidence, "event_id": event.id, "event_key": event.idempotency_key},
                )
            else:
                self._report(badge, criteria, matched, moved, decided,
                             toward_next=badge.repeatable and next_multiple(criteria))

    def _report(
        self, badge: BadgeRule, criteria: Sequence[tuple[str, Criterion]], matched: list[tuple[str, Criterion, str]],
        moved: set[str], decided: list[tuple[Decimal, datetime]], toward_next: bool,
    ) -> None:
        """Not earned (or earned up to the current multiple): the progress of the criteria this event moved,
        measured as the award decision measures it (a late check-in reports the run it joined, not the streak as
        of its own day). `toward_next`: the target is the next multiple of the threshold ("4 of 6")."""
        matched_scopes = {scope for scope, _c, _b in matched if scope in moved}
        for index, (scope, c) in enumerate(criteria):
            if scope in matched_scopes:
                value, when = decided[index]
                end = ev.window_bounds(c, when, self.tz)[1]
                target = threshold_decimal(c)
                if toward_next and target > 0:
                    target = target * (math.floor(value / target) + 1)
                self.outcome.progress.append(
                    {
                        "badge": badge.key,
                        "criterion": index,
                        "current": num(value),
                        "target": num(target),
                        "window_end": shown(end) if end else None,
                    }
                )

    def _evidence(
        self, index: int, c: Criterion, sub: dict[str, ev.CounterState], met: bool, at: datetime, later: bool,
        skip: Callable[[datetime], bool] | None = None,
    ) -> dict[str, Any]:
        """What an award records of one criterion: the value the decision compared (a late event's streak run or
        rolling window included), its threshold, the bucket the event moved, and the window measured."""
        value, when = ev.decisive(c, sub, at, self.tz, later, skip)
        start, end = ev.window_bounds(c, when, self.tz)
        out: dict[str, Any] = {
            "criterion": index,
            "event": c.event,
            "aggregate": c.aggregate,
            "value": num(value),
            "threshold": num(threshold_decimal(c)),
            "met": met,
            "bucket": ev.bucket_for(c, at, self.tz),
            "window_start": shown(start) if start else None,
            "window_end": shown(end) if end else None,
        }
        run = streak_of(c, sub, at, self.tz)
        if run is not None and isinstance(c.window, CalendarWindow):
            out["streak_start"] = ordinal_key(c.window.unit, run[0])
        return out

    async def award_badge(
        self,
        badge: Badge | BadgeRule,
        *,
        award_key: str = "once",
        source: str,
        event: EventRecord | None = None,
        evidence: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> int | None:
        """Award once; credits the badge's points and announces it. None when already awarded."""
        at = at or (event.occurred_at if event else utcnow())
        if award_key in (await self.store.awards(self.user.id)).get(badge.id, ()):
            return None
        awarded_at = utcnow()
        award_id = await self.store.add_award(
            {
                "user_id": self.user.id,
                "badge_id": badge.id,
                "award_key": award_key,
                "source": source,
                "event_id": event.id if event else None,
                "evidence": evidence or {},
                "awarded_at": awarded_at,
                "counted_in": [],  # until its badge.awarded event moves a counter (NULL: made before 0008)
            }
        )
        self.outcome.badges_awarded.append(
            {"key": badge.key, "name": badge.name, "points": badge.points, "award_id": award_id, "source": source}
        )
        self.store.emit(
            "badge.awarded",
            self.user.id,
            {
                "user_id": self.user.external_id,
                "badge": badge.key,
                "badge_name": badge.name,
                "award_id": award_id,
                "points": badge.points,
                "source": source,
                "awarded_at": shown(awarded_at),
            },
            awarded_at,
        )
        outer = self.chain
        self.chain = outer | {badge.id}  # what this award causes, it causes on the badge's behalf
        try:
            if badge.points:
                await self.credit_points(
                    badge.points,
                    reason=f"Badge unlocked: {badge.name}",
                    source_type="badge",
                    source_id=str(award_id),
                    at=at,
                    fresh=True,
                )
            await self._synthetic(
                BADGE_AWARDED,
                f"badge.awarded:{award_id}",
                {"badge": badge.key, "award_id": award_id, "source": source},
                at,
            )
        finally:
            self.chain = outer
        return award_id

    # ------------------------------------------------------------------ points and levels

    async def credit_points(
        self,
        amount: int,
        *,
        reason: str,
        source_type: str,
        source_id: str,
        at: datetime | None = None,
        fresh: bool = False,
    ) -> CreditRecord | None:
        """Credit (or debit) once per source; reaching a level is announced once per level.

        `fresh`: the source is new by construction (an award id this run just took, a challenge step that has
        just been done under its participation's lock), so there is nothing to look up; the unique constraint
        on (source_type, source_id) still guards it when the rows are written.
        """
        if not fresh and await self.store.ledger_has(source_type, source_id):
            return None
        before = self.user.points
        after = before + amount
        now = utcnow()
        fields: dict[str, Any] = {
            "user_id": self.user.id,
            "amount": amount,
            "balance_after": after,
            "reason": reason,
            "source_type": source_type,
            "source_id": source_id,
            "created_at": now,
        }
        entry = CreditRecord(id=await self.store.add_ledger(fields), **fields, occurred_at=at or now)
        if isinstance(self.user, MemberRecord):
            self.user.points = after
        else:
            set_committed_value(self.user, "points", after)  # the balance is written by the store
        self.outcome.points_credited += amount
        self.store.emit(
            "points.credited",
            self.user.id,
            {
                "user_id": self.user.external_id,
                "amount": amount,
                "balance": after,
                "reason": reason,
                "source_type": source_type,
                "source_id": source_id,
                "entry_id": entry.id,
            },
            now,
        )
        for listener in hooks.POINTS_LISTENERS:
            await listener(self, entry)
        for level in levels_service.crossed(await levels_service.ladder(self.session), before, after):
            if await self.store.level_reached(self.user.id, level.rank):
                continue
            await self.store.add_level(self.user.id, level.rank, level.name, now)
            self.outcome.levels_reached.append({"rank": level.rank, "name": level.name})
            self.store.emit(
                "level.reached",
                self.user.id,
                {
                    "user_id": self.user.external_id,
                    "rank": level.rank,
                    "level": level.name,
                    "points_required": level.points_required,
                    "reached_at": shown(now),
                },
                now,
            )
            await self._synthetic(
                "level.reached",
                f"level.reached:{self.user.id}:{level.rank}",
                {"level": level.name, "rank": level.rank},
                at or now,
            )
        return entry

    async def flush(self) -> None:
        """Write what this transaction's runs have buffered (also done by the session before commit)."""
        await self.store.flush()


def in_season(badge: Badge | BadgeRule, at: datetime) -> bool:
    if badge.visibility != "seasonal":
        return True
    if badge.available_from is not None and at < badge.available_from:
        return False
    return not (badge.available_until is not None and at >= badge.available_until)


def reads(c: Criterion, at: datetime, tz: Any, later: bool = True) -> list[str]:
    """The buckets an award decision on `c` for an event at `at` reads: its window's, and with `later` (see
    `ev.decisive`) for a late event in a rolling window the later days whose windows hold it (events carry at
    most MAX_FUTURE beyond now)."""
    needed = ev.buckets_needed(c, at, tz)
    if later and isinstance(c.window, RollingWindow) and c.aggregate != "streak":
        needed = needed + ev.buckets_after(c, at, tz, utcnow() + MAX_FUTURE)
    return needed


def streak_of(c: Criterion, sub: dict[str, ev.CounterState], at: datetime, tz: Any) -> tuple[int, int, int] | None:
    """(first, last, active periods) of the streak run holding `at`'s period, as ordinals; None if not a streak."""
    if c.aggregate != "streak" or not isinstance(c.window, CalendarWindow):
        return None
    return ev.streak_run(c, sub.get(ev.LIFETIME, ev.EMPTY), period_ordinal(c.window.unit, at, tz))


STREAK_KEY = "streak@"  # + the period of the event that completed a multiple of the threshold


def rewarded_days(held: Collection[str], tz: Any) -> Callable[[datetime], bool]:
    """Whether a repeatable rolling badge's award for the day of an instant is held."""
    return lambda t: f"d:{period_key('day', t, tz)}" in held


def _streak_key_ordinal(unit: str, key: str) -> int | None:
    """The period ordinal a streak award key names ('streak@2026-11-20', or '…#2' for a second in one period);
    None for another key, or one of another unit (the badge's criterion was edited from days to weeks, say: those
    awards belong to no run of the new unit)."""
    if not key.startswith(STREAK_KEY):
        return None
    try:
        return key_ordinal(unit, key[len(STREAK_KEY):].split("#", 1)[0])
    except ValueError:
        return None


def next_multiple(crits: Sequence[tuple[str, Criterion]]) -> bool:
    """Whether a repeatable badge of these criteria is earned once per multiple of a lifetime threshold (`n:` keys
    in `repeat_key`), so its progress runs toward the next multiple rather than resetting with a window."""
    if len(crits) != 1:
        return False
    c = crits[0][1]
    return c.aggregate != "streak" and not isinstance(c.window, CalendarWindow | FixedWindow | RollingWindow)


def repeat_key(
    badge: BadgeRule, crits: Sequence[tuple[str, Criterion]], subs: Sequence[dict[str, ev.CounterState]],
    at: datetime, tz: Any, held: Collection[str],
) -> str | None:
    """How often a repeatable badge can be earned: once per calendar period, fixed window, day of the window
    that was met, threshold, or threshold within a streak run. None: nothing new is due.

    A streak run earns once per multiple of the threshold it holds, counted against the awards whose completing
    period lies inside the run: a late check-in that extends a run or joins two runs earns only what the run
    would have earned in time order, and a new run earns again. `held`: the badge's award keys the member holds."""
    if not badge.repeatable:
        return "once"
    c = crits[0][1]
    w = c.window
    if isinstance(w, CalendarWindow):
        run = streak_of(c, subs[0], at, tz)
        if c.aggregate != "streak":
            return f"p:{period_key(w.unit, at, tz)}"
        if run is None:
            return None
        first, last, n = run
        earned = sum(1 for k in held if (p := _streak_key_ordinal(w.unit, k)) is not None and first <= p <= last)
        if math.floor(Decimal(n) / threshold_decimal(c)) <= earned:
            return None
        key = f"{STREAK_KEY}{period_key(w.unit, at, tz)}"
        return key if key not in held else f"{key}#{earned + 1}"  # a second multiple completed in one period
    if isinstance(w, FixedWindow):
        return "fixed"
    if isinstance(w, RollingWindow):
        # The day of the first met window not yet rewarded: a late event completing a later window keys it there.
        value, when = ev.decisive(c, subs[0], at, tz, len(crits) == 1, rewarded_days(held, tz))
        return f"d:{period_key('day', when, tz)}" if value >= threshold_decimal(c) else None
    return f"n:{math.floor(ev.value_of(c, subs[0], at, tz) / threshold_decimal(c))}"
