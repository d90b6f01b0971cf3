"""Engine hooks: scores move inside the ingestion transaction, under the member's lock."""

from __future__ import annotations

from app.events import hooks
from app.events.engine import EngineRun
from app.events.record import CreditRecord, EventRecord
from app.leaderboards import repository as lb_repo
from app.leaderboards import scoring
from app.leaderboards import service as lb_service


async def active_boards(run: EngineRun) -> list[scoring.ActiveBoard]:
    """Active boards, from a short per-process cache (admin changes here invalidate it)."""
    return await lb_service.ACTIVE_BOARDS.get(run.session)


@hooks.on_event
async def on_event(run: EngineRun, event: EventRecord) -> None:
    boards = await active_boards(run)
    if not boards:
        return
    changes = scoring.event_changes(
        boards, event.type, event.attributes or {}, event.occurred_at, run.user.city, run.tz
    )
    if changes:
        await lb_repo.add_scores(run.session, run.user.id, changes)


@hooks.on_points
async def on_points(run: EngineRun, entry: CreditRecord) -> None:
    boards = [b for b in await active_boards(run) if b.metric.type == "points"]
    if not boards:
        return
    attributes = {"amount": entry.amount, "source_type": entry.source_type, "reason": entry.reason}
    changes = scoring.points_changes(boards, entry.amount, attributes, entry.created_at, run.user.city, run.tz)
    if changes:
        await lb_repo.add_scores(run.session, run.user.id, changes)
