"""Engine hooks: scores move inside the ingestion transaction, under the member's lock (buffered in the
engine store and written when it flushes, before the commit)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from app.events import hooks
from app.events.engine import EngineRun
from app.events.record import CreditRecord, EventRecord
from app.leaderboards import repository as lb_repo
from app.leaderboards import scoring
from app.leaderboards import service as lb_service
from app.points import repository as points_repo

EXTRAS_KEY = "leaderboards.active"
# A credit that takes another back (its source type) -> the source type of the credit it takes back.
REVERSES = {"badge_revoke": "badge"}


async def active_boards(run: EngineRun) -> list[scoring.ActiveBoard]:
    """Active boards, from a short per-process cache (admin changes here invalidate it), kept for the
    transaction so a batch asks the cache once."""
    boards: list[scoring.ActiveBoard] | None = run.store.extras.get(EXTRAS_KEY)
    if boards is None:
        boards = run.store.extras[EXTRAS_KEY] = await lb_service.ACTIVE_BOARDS.get(run.session)
    return boards


@hooks.on_event
async def on_event(run: EngineRun, event: EventRecord) -> None:
    boards = await active_boards(run)
    if not boards:
        return
    changes = scoring.event_changes(
        boards, event.type, event.attributes or {}, event.occurred_at, run.user.city, run.tz
    )
    if changes:
        run.store.add_scores(run.user.id, changes)  # written with the run's other rows, merged per member


@hooks.on_points
async def on_points(run: EngineRun, entry: CreditRecord) -> None:
    boards = [b for b in await active_boards(run) if b.metric.type == "points"]
    if boards and entry.amount < 0 and entry.source_type in REVERSES:
        # Taken back only where the credit can have been counted: on boards that existed when it was made (a
        # board does not count credits from before it was created; it would put the member below zero there).
        credit = await points_repo.by_source(run.session, REVERSES[entry.source_type], entry.source_id)
        if credit is not None:
            counted = await lb_repo.created_by(run.session, [b.id for b in boards], credit.created_at)
            boards = [b for b in boards if b.id in counted]
    if not boards:
        return
    attributes = {"amount": entry.amount, "source_type": entry.source_type, "reason": entry.reason}
    at = entry.occurred_at or entry.created_at
    changes = scoring.points_changes(boards, entry.amount, attributes, at, run.user.city, run.tz)
    if changes:
        run.store.add_scores(run.user.id, changes)


@hooks.on_withdraw
async def on_withdraw(run: EngineRun, event: EventRecord) -> None:
    """A revoked badge leaves the boards that counted its award (badges boards, and `count` or `sum` boards of
    `badge.awarded` events), in the period its award was counted in.

    Only where it can have been counted: on boards that existed when the award was, and never below zero (a
    board does not count awards from before it was created, and a member's city may have changed since)."""
    boards = [b for b in await active_boards(run) if b.metric.type != "points"]
    if not boards:
        return
    changes = scoring.event_changes(
        boards, event.type, event.attributes or {}, event.occurred_at, run.user.city, run.tz
    )
    held = await lb_repo.member_scores(
        run.session, run.user.id, [(c.board_id, c.period, c.dim) for c in changes], event.received_at
    )
    undo = [
        replace(c, delta=-min(c.delta, score))
        for c in changes
        if c.delta > 0 and (score := held.get((c.board_id, c.period, c.dim), Decimal(0))) > 0
    ]
    if undo:
        run.store.add_scores(run.user.id, undo)
