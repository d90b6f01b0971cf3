"""The engine's unit of work: what a request's engine runs read (once) and write (buffered, once per table).

Why: evaluated row by row, an event that unlocks a badge cost ~20 statements (award, credit, balance,
level, outbox, award event, …) and a 1,000-event batch 20,000. Engine runs now read a member's held
badges, levels and counters once — for all of a batch's members in one query each — and append their
writes here; `flush` writes each table with one statement.

Exactly once still holds: every writer of these rows runs under the member's row lock
(`users_repo.lock_member`), so "is this award / level / credit new?" is decided in memory against rows read
under that lock, and the unique constraints stay as the last line of defence. Ids are taken from the
tables' sequences ahead of the insert (PostgreSQL), or from max(id) under SQLite's single writer, so an
award's ledger entry and its `badge.awarded` event can name it before anything is written.

The store lives in `session.info` for one transaction: `kit.db.commit` flushes it before the commit, and
anything that rolls back part of a transaction must `discard_store` (its reads may describe undone rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, event, null, select, text, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.events import pg_fast
from app.kit.db import TX_BUFFERS, tx_buffers
from app.kit.dialect import dialect_name, insert_for
from app.leaderboards import repository as lb_repo
from app.leaderboards.repository import ScoreChange
from app.models import Event, EventOutcome, OutboxMessage, PointsEntry, RuleCounter, User, UserBadge, UserLevel
from app.rules.evaluator import EMPTY, CounterState

STORE_KEY = "engine"

ET: Table = Event.__table__  # type: ignore[assignment]
BT: Table = UserBadge.__table__  # type: ignore[assignment]
LT: Table = PointsEntry.__table__  # type: ignore[assignment]
VT: Table = UserLevel.__table__  # type: ignore[assignment]
OT: Table = OutboxMessage.__table__  # type: ignore[assignment]
CT: Table = RuleCounter.__table__  # type: ignore[assignment]
OCT: Table = EventOutcome.__table__  # type: ignore[assignment]
UT: Table = User.__table__  # type: ignore[assignment]

ID_TABLES = pg_fast.ID_TABLES
CounterKey = tuple[int, str, str]  # (user_id, scope, bucket)

# Prefetchers other packages register (challenges: active participations) so a batch loads their state for
# all of its members in one query instead of one per member.
Prefetcher = Callable[["EngineStore", Sequence[int]], Awaitable[None]]
PREFETCHERS: list[Prefetcher] = []

_SET_BALANCE = update(UT).where(UT.c.id == bindparam("uid")).values(points=bindparam("points"))



def store_for(session: AsyncSession) -> EngineStore:
    """The transaction's store (created on first use)."""
    buffers = tx_buffers(session)
    store = buffers.get(STORE_KEY)
    if not isinstance(store, EngineStore):
        store = EngineStore(session)
        buffers[STORE_KEY] = store
    return store


@event.listens_for(Session, "before_commit")
def _refuse_unflushed(session: Session) -> None:
    """A commit that is not `kit.db.commit` (a job, a script) would silently drop the engine's buffered rows:
    refuse it instead, so the transaction rolls back whole."""
    store = session.info.get(TX_BUFFERS, {}).get(STORE_KEY)
    if isinstance(store, EngineStore) and store.pending():
        raise RuntimeError("engine rows are still buffered: commit with app.kit.db.commit, which flushes them")


def discard_store(session: AsyncSession) -> None:
    """Forget reads and unwritten rows (after a rollback to a savepoint)."""
    tx_buffers(session).pop(STORE_KEY, None)


class IdPool:
    """Ids handed out before the rows are written, for the tables whose rows reference each other."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.pg = dialect_name(session) == "postgresql"
        self._free: dict[str, list[int]] = {t: [] for t in ID_TABLES}
        self._last: dict[str, int] = {}  # SQLite: the last id handed out per table
        self._size: dict[str, int] = {}  # PostgreSQL: the next refill's size per table (doubling)
        self.hint = 8  # the first refill's size (a batch sets it from its size)

    async def next(self, table: str) -> int:
        if self.pg:
            free = self._free[table]
            if not free:
                await self._refill(table)
            return free.pop()
        # SQLite's writer lock makes max(id) safe; asked each time because rows inserted without an explicit
        # id (by the database) may have taken the next one meanwhile. An AUTOINCREMENT table's sqlite_sequence
        # remembers ids whose rows were deleted (revoked awards), so those are never handed out again.
        res = await self.session.execute(text(
            f"SELECT max(coalesce((SELECT max(id) FROM {table}), 0), "
            f"coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0))"
        ))
        value = max(int(res.scalar_one()), self._last.get(table, 0)) + 1
        self._last[table] = value
        return value

    def supply(self, rows: Sequence[tuple[int, ...]]) -> None:
        """Ids drawn by another statement (the claim), a row per draw and a column per table, as a refill."""
        if not rows:
            return
        for i, t in enumerate(ID_TABLES):
            self._free[t].extend(sorted((int(r[i]) for r in rows), reverse=True))
            self._size.setdefault(t, len(rows) * 2)

    async def _refill(self, table: str) -> None:
        """The first refill fills every table's pool in one round trip (an award takes an id of each); later
        ones only the table that ran out, twice as many each time. Unused ids are gaps in a sequence."""
        tables = ID_TABLES if not self._size else (table,)
        n = max(8, min(self._size.get(table, self.hint), 4096))
        rows = await pg_fast.next_ids(self.session, tables, n)
        for i, t in enumerate(tables):
            self._free[t].extend(sorted((int(r[i]) for r in rows), reverse=True))
            self._size[t] = n * 2


class EngineStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.ids = IdPool(session)
        self.extras: dict[str, Any] = {}  # prefetched state of listeners, per package
        # reads, valid while the transaction holds the members' locks
        self._awards: dict[int, dict[int, set[str]]] = {}  # user → badge → award keys
        self._levels: dict[int, set[int]] = {}
        self._counters: dict[CounterKey, CounterState] = {}
        self._new_members: set[int] = set()  # created by this transaction: nothing of theirs to read
        # buffered writes
        self._events: list[dict[str, Any]] = []
        self._award_rows: list[dict[str, Any]] = []
        self._ledger: list[dict[str, Any]] = []
        self._ledger_sources: set[tuple[str, str]] = set()
        self._level_rows: list[dict[str, Any]] = []
        self._outbox: list[dict[str, Any]] = []
        self._counter_writes: dict[CounterKey, CounterState] = {}
        self._balances: dict[int, int] = {}
        self._outcomes: dict[int, dict[str, Any]] = {}
        self._scores: dict[int, list[ScoreChange]] = defaultdict(list)
        self._flush_hooks: dict[str, Callable[[EngineStore], Awaitable[None]]] = {}

    # ------------------------------------------------------------------ bulk reads (batches)

    async def prefetch(self, user_ids: Sequence[int]) -> None:
        """Load awards and levels of many members (and the listeners' state) in one query each."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        await self._load_holdings(ids)
        for prefetcher in PREFETCHERS:
            await prefetcher(self, ids)

    def created(self, user_ids: Iterable[int]) -> None:
        """Members this transaction has just created: they hold no award, level or counter, so none is read."""
        for u in user_ids:
            self._new_members.add(u)
            self._awards.setdefault(u, {})
            self._levels.setdefault(u, set())

    def held_now(self, user_id: int) -> dict[int, set[str]]:
        """Badge id → award keys of a member whose holdings are loaded (see prefetch)."""
        return self._awards.get(user_id, {})

    async def _load_holdings(self, user_ids: Sequence[int]) -> None:
        """Awards and levels reached of members not loaded yet, in one query."""
        wanted = [u for u in user_ids if u not in self._awards]
        if not wanted:
            return
        for u in wanted:
            self._awards[u], self._levels[u] = {}, set()
        rows: Iterable[tuple[int, int, str | None]]
        if self.ids.pg:
            rows = await pg_fast.read_holdings(self.session, wanted)
        else:
            awards = select(BT.c.user_id, BT.c.badge_id, BT.c.award_key).where(BT.c.user_id.in_(wanted))
            levels = select(VT.c.user_id, VT.c.rank, null()).where(VT.c.user_id.in_(wanted))
            rows = (tuple(r) for r in await self.session.execute(union_all(awards, levels)))
        for uid, ref, key in rows:
            if key is None:
                self._levels[uid].add(ref)
            else:
                self._awards[uid].setdefault(ref, set()).add(key)

    async def load_member_state(self, user_id: int, counter_keys: Iterable[CounterKey]) -> None:
        """One member's awards, levels and the given counters; one round trip on PostgreSQL."""
        if not self.ids.pg or user_id in self._awards:
            await self._load_holdings([user_id])
            await self.load_counters(counter_keys)
            return
        missing = sorted({k for k in counter_keys if k not in self._counters})
        counters, awards, levels = await pg_fast.read_state(self.session, user_id, missing)
        for uid, scope, bucket, state in counters:
            self._counters[(uid, scope, bucket)] = CounterState.from_json(state)
        for key in missing:
            self._counters.setdefault(key, EMPTY)
        held: dict[int, set[str]] = {}
        for badge_id, award_key in awards:
            held.setdefault(badge_id, set()).add(award_key)
        self._awards[user_id], self._levels[user_id] = held, set(levels)

    async def load_counters(self, keys: Iterable[CounterKey]) -> None:
        missing = {k for k in keys if k not in self._counters}
        if self._new_members:
            for key in [k for k in missing if k[0] in self._new_members]:
                self._counters[key] = EMPTY
                missing.discard(key)
        if not missing:
            return
        if self.ids.pg:
            for uid, scope, bucket, state in await pg_fast.read_counters(self.session, sorted(missing)):
                self._counters[(uid, scope, bucket)] = CounterState.from_json(state)
            for key in missing:
                self._counters.setdefault(key, EMPTY)
            return
        # Three short IN lists (users × scopes × buckets) rather than one tuple per key; the superset is
        # filtered here.
        users = sorted({k[0] for k in missing})
        scopes = sorted({k[1] for k in missing})
        buckets = sorted({k[2] for k in missing})
        rows = await self.session.execute(
            select(CT.c.user_id, CT.c.scope, CT.c.bucket, CT.c.state).where(
                CT.c.user_id.in_(users), CT.c.scope.in_(scopes), CT.c.bucket.in_(buckets)
            )
        )
        for uid, scope, bucket, state in rows:
            key = (uid, scope, bucket)
            if key in missing:
                self._counters[key] = CounterState.from_json(state)
        for key in missing:
            self._counters.setdefault(key, EMPTY)

    # ------------------------------------------------------------------ per-member reads

    async def awards(self, user_id: int) -> dict[int, set[str]]:
        """badge id → award keys the member holds (rows written by this transaction included)."""
        if user_id not in self._awards:
            await self._load_holdings([user_id])
        return self._awards[user_id]

    async def counters(self, user_id: int, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CounterState]:
        wanted = [(user_id, s, b) for s, b in keys]
        await self.load_counters(wanted)
        return {(s, b): self._counters[(u, s, b)] for u, s, b in wanted}

    async def level_reached(self, user_id: int, rank: int) -> bool:
        if user_id not in self._levels:
            await self._load_holdings([user_id])
        return rank in self._levels[user_id]

    async def ledger_has(self, source_type: str, source_id: str) -> bool:
        if (source_type, source_id) in self._ledger_sources:
            return True
        res = await self.session.execute(
            select(LT.c.id).where(LT.c.source_type == source_type, LT.c.source_id == source_id).limit(1)
        )
        return res.first() is not None

    # ------------------------------------------------------------------ buffered writes

    def set_counter(self, user_id: int, scope: str, bucket: str, state: CounterState) -> None:
        self._counters[(user_id, scope, bucket)] = state
        self._counter_writes[(user_id, scope, bucket)] = state

    def forget_counters(self, user_id: int, scope_prefix: str) -> None:
        """Drop what this transaction holds of a member's counters of one badge (read or yet to be written); the
        caller deletes the stored rows."""
        for held in (self._counters, self._counter_writes):
            for key in [k for k in held if k[0] == user_id and k[1].startswith(scope_prefix)]:
                del held[key]

    async def add_event(self, row: dict[str, Any]) -> int:
        row = {**row, "id": await self.ids.next("events")}
        self._events.append(row)
        return int(row["id"])

    async def add_award(self, row: dict[str, Any]) -> int:
        award_id = await self.ids.next("user_badges")
        self._award_rows.append({"counted_in": None, **row, "id": award_id})
        (await self.awards(row["user_id"])).setdefault(row["badge_id"], set()).add(row["award_key"])
        return award_id

    async def note_counted(self, award_id: int, counted: list[list[str]]) -> None:
        """Record on an award the (scope, bucket) counters its `badge.awarded` event moved. The award is almost
        always still buffered (its event is evaluated right after it), the newest rows last."""
        for row in reversed(self._award_rows):
            if row["id"] == award_id:
                row["counted_in"] = counted
                return
        await self.session.execute(update(BT).where(BT.c.id == award_id).values(counted_in=counted))

    async def add_ledger(self, row: dict[str, Any]) -> int:
        entry_id = await self.ids.next("points_ledger")
        self._ledger.append({**row, "id": entry_id})
        self._ledger_sources.add((row["source_type"], row["source_id"]))
        self._balances[row["user_id"]] = row["balance_after"]
        return entry_id

    async def add_level(self, user_id: int, rank: int, name: str, at: datetime) -> None:
        if user_id not in self._levels:
            await self._load_holdings([user_id])
        self._levels[user_id].add(rank)
        self._level_rows.append({"user_id": user_id, "rank": rank, "name": name, "reached_at": at})

    def emit(self, kind: str, user_id: int | None, payload: dict[str, Any], at: datetime) -> None:
        self._outbox.append({"kind": kind, "user_id": user_id, "payload": payload, "created_at": at})

    def set_outcome(self, event_id: int, outcome: dict[str, Any]) -> None:
        self._outcomes[event_id] = outcome

    def add_scores(self, user_id: int, changes: Sequence[ScoreChange]) -> None:
        self._scores[user_id].extend(changes)

    def pending(self) -> bool:
        """Whether anything is buffered and not yet written."""
        return bool(
            self._events or self._award_rows or self._ledger or self._level_rows or self._outbox
            or self._counter_writes or self._balances or self._outcomes or self._scores or self._flush_hooks
        )

    def on_flush(self, key: str, hook: Callable[[EngineStore], Awaitable[None]]) -> None:
        """Have a listener's buffered rows (challenge progress) written by the next flush."""
        self._flush_hooks[key] = hook

    # ------------------------------------------------------------------ flush

    async def flush(self) -> None:
        """Write what is buffered, one statement per table, in key order (concurrent flushes cannot deadlock)."""
        s = self.session
        hooks, self._flush_hooks = self._flush_hooks, {}
        for hook in hooks.values():
            await hook(self)
        if self.ids.pg:
            await self._flush_pg()
        if self._events:
            rows, self._events = self._events, []
            await s.execute(ET.insert(), rows)
        if self._award_rows:
            rows, self._award_rows = self._award_rows, []
            await s.execute(BT.insert(), rows)
        if self._ledger:
            rows, self._ledger = self._ledger, []
            await s.execute(LT.insert(), rows)
        if self._level_rows:
            rows, self._level_rows = self._level_rows, []
            await s.execute(VT.insert(), rows)
        if self._outbox:
            rows, self._outbox = self._outbox, []
            await s.execute(OT.insert(), rows)
        if self._counter_writes:
            writes, self._counter_writes = self._counter_writes, {}
            ins = insert_for(s, CT)
            stmt = ins.on_conflict_do_update(
                index_elements=["user_id", "scope", "bucket"], set_={"state": ins.excluded.state}
            )
            await s.execute(
                stmt,
                [{"user_id": k[0], "scope": k[1], "bucket": k[2], "state": v.to_json()} for k, v in sorted(
                    writes.items(), key=lambda kv: kv[0])],
            )
        if self._balances:
            balances, self._balances = self._balances, {}
            await s.execute(_SET_BALANCE, [{"uid": u, "points": p} for u, p in sorted(balances.items())])
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, {}
            await s.execute(OCT.insert(), [{"event_id": e, "outcome": o} for e, o in sorted(outcomes.items())])
        if self._scores:
            scores, self._scores = self._scores, defaultdict(list)
            await lb_repo.add_scores_many(s, sorted(scores.items()))
        self._ledger_sources.clear()

    async def _flush_pg(self) -> None:
        """Everything but leaderboard scores in one round trip (see pg_fast)."""
        if not (self._events or self._award_rows or self._ledger or self._level_rows or self._outbox
                or self._counter_writes or self._balances or self._outcomes):
            return  # (leaderboard scores and listener hooks are written by flush itself)
        await pg_fast.write(
            self.session,
            events=self._events,
            awards=self._award_rows,
            ledger=self._ledger,
            levels=self._level_rows,
            outbox=self._outbox,
            counters=[(*k, v.to_json()) for k, v in sorted(self._counter_writes.items(), key=lambda kv: kv[0])],
            balances=sorted(self._balances.items()),
            outcomes=sorted(self._outcomes.items()),
        )
        self._events, self._award_rows, self._ledger, self._level_rows, self._outbox = [], [], [], [], []
        self._counter_writes, self._balances, self._outcomes = {}, {}, {}
