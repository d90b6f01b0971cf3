"""The audit log of manual grants, revokes and adjustments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from app.audit import service as audit
from app.auth.deps import AdminKey
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.pagination import Page, PageDep
from app.kit.schemas import ProgramTime, ReadModel

router = APIRouter(tags=["admin"])


class AuditOut(ReadModel):
    id: int
    actor: str
    actor_key_id: int | None = Field(description="The API key acted with (null: the bootstrap key or the CLI)")
    action: str
    user_id: str | None
    target: str | None
    reason: str
    details: dict[str, Any]
    created_at: ProgramTime


@router.get("/v1/admin/audit", response_model=Page[AuditOut], responses=responses(401, 403, 404))
async def audit_log(
    session: SessionDep,
    page: PageDep,
    _: AdminKey,
    user_id: Annotated[str | None, Query(max_length=128, description="Member external_id")] = None,
    action: Annotated[str | None, Query(max_length=48)] = None,
) -> Page[AuditOut]:
    """Who did what, to whom, when and why — newest first."""
    rows, total = await audit.page_for(session, limit=page.limit, offset=page.offset, external_id=user_id,
                                       action=action)
    items = [
        AuditOut(
            id=e.id,
            actor=e.actor,
            actor_key_id=e.actor_key_id,
            action=e.action,
            user_id=ext,
            target=e.target,
            reason=e.reason,
            details=e.details,
            created_at=e.created_at,
        )
        for e, ext in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
