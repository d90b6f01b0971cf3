"""Recording and reading operator actions (who, when, why)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import AuditEntry, User
from app.users import repository as users_repo


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    reason: str,
    user_id: int | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    actor_key_id: int | None = None,
) -> AuditEntry:
    entry = AuditEntry(actor=actor, actor_key_id=actor_key_id, action=action, reason=reason, user_id=user_id,
                       target=target, details=details or {})
    session.add(entry)
    await session.flush()
    return entry


async def page(
    session: AsyncSession, *, limit: int, offset: int, user_id: int | None = None, action: str | None = None
) -> tuple[list[tuple[AuditEntry, str | None]], int]:
    base = select(AuditEntry, User.external_id).outerjoin(User, User.id == AuditEntry.user_id)
    count = select(func.count()).select_from(AuditEntry)
    if user_id is not None:
        base = base.where(AuditEntry.user_id == user_id)
        count = count.where(AuditEntry.user_id == user_id)
    if action is not None:
        base = base.where(AuditEntry.action == action)
        count = count.where(AuditEntry.action == action)
    rows = await session.execute(base.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    total = (await session.execute(count)).scalar_one()
    return [(r[0], r[1]) for r in rows.all()], total


async def page_for(
    session: AsyncSession, *, limit: int, offset: int, external_id: str | None = None, action: str | None = None
) -> tuple[list[tuple[AuditEntry, str | None]], int]:
    """A page of the log, optionally of one member (by external id: 404 if unknown) or one action."""
    user_id: int | None = None
    if external_id is not None:
        user = await users_repo.by_external_id(session, external_id)
        if user is None:
            raise NotFound("Member not found", code="user_not_found")
        user_id = user.id
    return await page(session, limit=limit, offset=offset, user_id=user_id, action=action)


async def revoked_award_ids(session: AsyncSession) -> set[int]:
    """The ids of every award an operator revoked (the audit log is where a deleted award is remembered)."""
    rows = await session.execute(select(AuditEntry.details).where(AuditEntry.action == "badge.revoke"))
    return {d["award_id"] for (d,) in rows.all() if isinstance(d, dict) and isinstance(d.get("award_id"), int)}
