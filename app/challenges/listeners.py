"""Engine hook: advance the member's active challenges with each event, in the ingestion transaction.

Participations are loaded once per engine run (cached in ``run.extras``) and updated incrementally;
an event counts only if it occurred at/after joining (less a small clock-skew tolerance,
``progress.JOIN_CLOCK_SKEW``) and before the participation's deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from app.challenges import progress as prog
from app.challenges import repository as repo
from app.challenges import service as challenges_service
from app.events import hooks
from app.events.engine import EngineRun
from app.events.record import EventRecord
from app.events.store import PREFETCHERS, EngineStore
from app.kit import clock
from app.models import Challenge
from app.rules.criteria import Criterion

EXTRAS_KEY = "challenges.active"
PROGRESS_KEY = "challenges.progress"


@dataclass
class Active:
    id: int
    challenge: Challenge
    steps: list[Criterion]
    instance: str
    joined_at: datetime
    deadline: datetime | None
    progress: list[dict[str, Any]]
    status: str = "active"
    _from: datetime | None = None

    def counts(self, at: datetime, tz: tzinfo, now: datetime | None = None) -> bool:
        """Whether an event that occurred `at`, evaluated `now`, moves this participation. One past its deadline is
        settled whether or not the expiry job has got to it yet: an event arriving after the deadline does not
        count, even one that occurred before it (as for a participation already expired)."""
        if self.status != "active" or (self.deadline is not None and at >= self.deadline):
            return False
        if self.deadline is not None and now is not None and now >= self.deadline:
            return False
        if at >= self.joined_at:
            return True
        if self._from is None:
            spec = challenges_service.schedule_of(self.challenge)
            self._from = prog.counts_from(spec, self.instance, self.joined_at, tz)
        return at >= self._from


def _active(p: Any, c: Challenge) -> Active:
    return Active(id=p.id, challenge=c, steps=challenges_service.parsed_steps(c), instance=p.instance_key,
                  joined_at=p.joined_at, deadline=p.deadline, progress=list(p.progress))


async def _actives(run: EngineRun) -> list[Active]:
    cached = run.extras.get(EXTRAS_KEY)
    if cached is None:
        prefetched: dict[int, list[Active]] | None = run.store.extras.get(EXTRAS_KEY)
        if prefetched is not None and run.user.id in prefetched:
            cached = prefetched[run.user.id]
        elif not await repo.LIVE.get(run.session):
            cached = []  # no published challenge: nothing to advance
        else:
            cached = [_active(p, c) for p, c in await repo.active_for_user(run.session, run.user.id)]
        run.extras[EXTRAS_KEY] = cached
    return cached


async def prefetch(store: EngineStore, user_ids: Sequence[int]) -> None:
    """A batch's members' active participations, in one query."""
    found: dict[int, list[Active]] = {uid: [] for uid in user_ids}
    if await repo.LIVE.get(store.session):
        for p, c in await repo.active_for_users(store.session, user_ids):
            found[p.user_id].append(_active(p, c))
    store.extras[EXTRAS_KEY] = found


PREFETCHERS.append(prefetch)


async def _save_progress(store: EngineStore) -> None:
    writes: dict[int, tuple[list[dict[str, Any]], int]] = store.extras.pop(PROGRESS_KEY, {})
    if writes:
        await repo.set_progress_many(store.session, [(pid, p, d) for pid, (p, d) in sorted(writes.items())])


@hooks.on_event
async def advance_challenges(run: EngineRun, event: EventRecord) -> None:
    pending: list[tuple[Active, list[dict[str, Any]], int, list[prog.StepChange]]] = []
    now = clock.utcnow()
    for a in await _actives(run):
        if not a.counts(event.occurred_at, run.tz, now):
            continue
        new, changes = prog.apply_event(a.steps, a.progress, event.type, event.attributes, event.occurred_at, run.tz,
                                        not_before=a.joined_at)
        if changes:
            pending.append((a, new, prog.steps_done(new), changes))
    if not pending:
        return
    # Written when the store flushes: one statement for every participation the transaction moved. The rows
    # were locked when loaded, so the deadline job cannot expire them meanwhile.
    writes: dict[int, tuple[list[dict[str, Any]], int]] = run.store.extras.setdefault(PROGRESS_KEY, {})
    if not writes:
        run.store.on_flush(PROGRESS_KEY, _save_progress)
    for a, new, done, changes in pending:
        writes[a.id] = (new, done)
        a.progress = new
        for ch in changes:
            if ch.newly_done:
                await challenges_service.credit_step(run, a.id, a.challenge, a.instance, ch.step, event, a.joined_at)
        rewards = None
        if done == len(a.steps):
            rewards = await challenges_service.complete(run, a.id, a.challenge, a.instance, event, a.joined_at)
            a.status = "completed"
        for ch in changes:
            entry: dict[str, Any] = {
                "challenge": a.challenge.key, "instance": a.instance, "step": ch.step,
                "current": prog.num(ch.current), "target": prog.num(ch.target), "done": ch.done, "status": a.status,
            }
            run.outcome.challenges.append(entry)
        if rewards is not None:
            run.outcome.challenges[-1]["rewards"] = rewards
