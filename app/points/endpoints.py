"""Points ledger (member), adjustments and the level ladder (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from pydantic import ValidationError

from app.auth.deps import AdminKey, CurrentUser
from app.errors import InvalidInput, responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.handlers import validation_details
from app.kit.pagination import Page, PageDep
from app.points import service as points_service
from app.points.schemas import AdjustIn, AdjustOut, LadderIn, LevelOut, PointsEntryOut
from app.users.endpoints import ExternalId

router = APIRouter(tags=["points"])


@router.get("/v1/me/points", response_model=Page[PointsEntryOut], responses=responses(401, 403))
async def my_points(session: SessionDep, user: CurrentUser, page: PageDep) -> Page[PointsEntryOut]:
    """The caller's points ledger, newest first."""
    items, total = await points_service.ledger(session, user, page.limit, page.offset)
    return Page(
        items=[PointsEntryOut.model_validate(e) for e in items], total=total, limit=page.limit, offset=page.offset
    )


@router.get(
    "/v1/admin/users/{external_id}/points",
    response_model=Page[PointsEntryOut],
    tags=["admin"],
    responses=responses(401, 403, 404),
)
async def member_points(
    external_id: ExternalId, session: SessionDep, _: AdminKey, page: PageDep
) -> Page[PointsEntryOut]:
    """A member's points ledger, newest first (what `GET /v1/me/points` shows them)."""
    items, total = await points_service.ledger_of(session, external_id, page.limit, page.offset)
    return Page(
        items=[PointsEntryOut.model_validate(e) for e in items], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/v1/admin/users/{external_id}/points",
    response_model=AdjustOut,
    tags=["admin"],
    responses=responses(401, 403, 404, 409, 422),
)
async def adjust_points(
    external_id: ExternalId, body: AdjustIn, session: SessionDep, settings: SettingsDep, caller: AdminKey
) -> AdjustOut:
    """Credit or debit a member by hand (audited)."""
    return await points_service.adjust(session, settings, caller, external_id, body)


@router.get("/v1/admin/badge-levels", response_model=list[LevelOut], tags=["admin"], responses=responses(401, 403))
async def get_ladder(session: SessionDep, _: AdminKey) -> list[LevelOut]:
    """The level ladder, lowest first."""
    return [LevelOut.model_validate(lv) for lv in await points_service.ladder(session)]


@router.put(
    "/v1/admin/badge-levels", response_model=list[LevelOut], tags=["admin"], responses=responses(401, 403, 409, 422)
)
async def put_ladder(
    session: SessionDep, _: AdminKey, body: list[dict[str, Any]] | dict[str, Any] = Body(...)
) -> list[LevelOut]:
    """Replace the ladder: up to 9 levels with strictly increasing `points_required`.

    The body is `{"levels": [...]}` or the bare list.
    """
    try:
        ladder = LadderIn.model_validate(body if isinstance(body, dict) else {"levels": body})
    except ValidationError as exc:
        details = validation_details(list(exc.errors()), ("body",))
        raise InvalidInput(f"Invalid level ladder: {details[0]['field']}: {details[0]['message']}",
                           details=details) from exc
    return [LevelOut.model_validate(lv) for lv in await points_service.replace_ladder(session, ladder)]
