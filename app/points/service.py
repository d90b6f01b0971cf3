"""Manual adjustments (audited), the ledger, and the ladder."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.service import KeyPrincipal
from app.challenges import repository as challenges_repo
from app.config import Settings
from app.errors import Conflict, NotFound
from app.events.engine import EngineRun
from app.kit.dialect import lock_key
from app.models import PointsEntry, User
from app.points import levels as levels_service
from app.points import repository as points_repo
from app.points.schemas import AdjustIn, AdjustOut, LadderIn
from app.users import repository as users_repo


async def adjust(
    session: AsyncSession, settings: Settings, actor: KeyPrincipal, external_id: str, body: AdjustIn
) -> AdjustOut:
    user = await users_repo.by_external_id(session, external_id)
    if user is None:
        raise NotFound("Member not found", code="user_not_found")
    run = await EngineRun.begin(session, settings, user)
    source_id = f"{user.id}:{body.idempotency_key or uuid.uuid4().hex}"
    if body.idempotency_key is not None:
        # A retry answers like the first request, even if the balance has moved since (a debit's retry is not
        # refused for insufficient points); the same key for another adjustment is a mistake, not a replay.
        done = await points_repo.by_source(session, "manual", source_id)
        if done is not None:
            if (done.amount, done.reason) != (body.amount, body.reason):
                raise Conflict(
                    "This idempotency key was used for another adjustment",
                    code="idempotency_key_reused",
                    details={"idempotency_key": body.idempotency_key, "amount": done.amount, "reason": done.reason},
                )
            return AdjustOut(user_id=external_id, applied=False, amount=done.amount, balance=user.points,
                             entry_id=done.id, levels_reached=[])
    if user.points + body.amount < 0:
        raise Conflict(
            "Adjustment would make the balance negative",
            code="insufficient_points",
            details={"balance": user.points, "amount": body.amount},
        )
    entry = await run.credit_points(body.amount, reason=body.reason, source_type="manual", source_id=source_id)
    await run.settle()  # the levels it reached count for badges, challenges and leaderboards
    if entry is not None:
        await audit.record(
            session,
            actor=actor.name,
            actor_key_id=actor.key_id,
            action="points.adjust",
            reason=body.reason,
            user_id=user.id,
            target=str(entry.id),
            details={"amount": body.amount, "balance": entry.balance_after},
        )
    return AdjustOut(
        user_id=external_id,
        applied=entry is not None,
        amount=body.amount,
        balance=user.points,
        entry_id=entry.id if entry else None,
        levels_reached=run.outcome.levels_reached,
    )


async def ledger(session: AsyncSession, user: User, limit: int, offset: int) -> tuple[list[PointsEntry], int]:
    return await points_repo.page(session, user.id, limit, offset)


async def ledger_of(
    session: AsyncSession, external_id: str, limit: int, offset: int
) -> tuple[list[PointsEntry], int]:
    user = await users_repo.by_external_id(session, external_id)
    if user is None:
        raise NotFound("Member not found", code="user_not_found")
    return await points_repo.page(session, user.id, limit, offset)


async def ladder(session: AsyncSession) -> Sequence[levels_service.Level]:
    return await levels_service.ladder(session)


async def replace_ladder(session: AsyncSession, body: LadderIn) -> Sequence[levels_service.Level]:
    """A level that challenges require by name (eligibility `min_level`) cannot be renamed or dropped: nobody
    could join them any more."""
    await lock_key(session, "badge-levels")  # a challenge naming a level is saved before or after, not during
    names = {lv.name for lv in body.levels}
    lost = {level: keys for level, keys in (await challenges_repo.keys_requiring_levels(session)).items()
            if level not in names}
    if lost:
        level, keys = next(iter(lost.items()))
        raise Conflict(
            f"Challenges require the level '{level}' to join ({', '.join(keys)}); keep its name or change them first",
            code="level_in_use", details={"levels": lost},
        )
    await levels_service.replace_ladder(session, [(lv.name, lv.icon, lv.points_required) for lv in body.levels])
    return await levels_service.ladder(session)
