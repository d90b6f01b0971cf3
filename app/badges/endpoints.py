"""Badges: admin CRUD, grants and statistics; the member's collection, details and share card."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from app.auth.deps import AdminKey, AnalyticsKey, CurrentUser
from app.badges import service as badges_service
from app.badges import simulation
from app.badges.schemas import (
    BADGE_KEY,
    AwardEvidence,
    AwardOut,
    BadgeAdmin,
    BadgeCreate,
    BadgePatch,
    BadgeStats,
    BadgeUpdate,
    GrantIn,
    MemberBadge,
    RevokeIn,
    ShareOut,
    SimulationIn,
    SimulationOut,
)
from app.config import Settings
from app.errors import InvalidInput, responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.i18n import LocaleDep
from app.models import Badge
from app.users.endpoints import ExternalId

router = APIRouter(tags=["badges"])
admin = APIRouter(prefix="/v1/admin", tags=["admin"])

BadgeKey = Annotated[str, Path(min_length=1, max_length=64, pattern=BADGE_KEY)]


def _admin_view(settings: Settings, badge: Badge) -> BadgeAdmin:
    out = BadgeAdmin.model_validate(badge)
    out.icon_url = badges_service.icon_url(settings, badge.icon)
    return out


@admin.post("/badges", status_code=201, response_model=BadgeAdmin, responses=responses(401, 403, 409, 422))
async def create_badge(body: BadgeCreate, session: SessionDep, settings: SettingsDep, _: AdminKey) -> BadgeAdmin:
    """Create a badge (criteria are validated; activating it never re-awards history)."""
    return _admin_view(settings, await badges_service.create(session, body))


@admin.get("/badges", response_model=list[BadgeAdmin], responses=responses(401, 403))
async def list_badges(
    session: SessionDep,
    settings: SettingsDep,
    _: AdminKey,
    status: Annotated[str | None, Query(pattern="^(draft|active|archived)$")] = None,
) -> list[BadgeAdmin]:
    """All badges, drafts included."""
    return [_admin_view(settings, b) for b in await badges_service.list_admin(session, status)]


@admin.get("/badges/{key}", response_model=BadgeAdmin, responses=responses(401, 403, 404))
async def get_badge(key: BadgeKey, session: SessionDep, settings: SettingsDep, _: AdminKey) -> BadgeAdmin:
    """One badge."""
    return _admin_view(settings, await badges_service.get(session, key))


@admin.put("/badges/{key}", response_model=BadgeAdmin, responses=responses(401, 403, 404, 422))
async def replace_badge(
    key: BadgeKey, body: BadgeUpdate, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> BadgeAdmin:
    """Replace a badge's definition."""
    return _admin_view(settings, await badges_service.replace(session, key, body))


@admin.patch("/badges/{key}", response_model=BadgeAdmin, responses=responses(401, 403, 404, 422))
async def patch_badge(
    key: BadgeKey, body: BadgePatch, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> BadgeAdmin:
    """Change some fields of a badge (e.g. `{"status": "active"}`)."""
    return _admin_view(settings, await badges_service.patch(session, key, body))


@admin.delete("/badges/{key}", status_code=204, responses=responses(401, 403, 404, 409))
async def delete_badge(key: BadgeKey, session: SessionDep, _: AdminKey) -> Response:
    """Delete a badge nobody holds and no live challenge rewards or requires (archive it otherwise)."""
    await badges_service.delete(session, key)
    return Response(status_code=204)


@admin.post("/badges/simulate", response_model=SimulationOut, responses=responses(401, 403, 404, 422))
async def simulate_badge(body: SimulationIn, session: SessionDep, settings: SettingsDep, _: AdminKey) -> SimulationOut:
    """Replay the last `days` days of events through a badge rule before it goes live: who would have earned it,
    how many awards, the points it would cost. Nothing is stored or awarded."""
    return await simulation.simulate(session, settings, body)


@admin.get("/badges/{key}/stats", response_model=BadgeStats, responses=responses(401, 403, 404))
async def badge_stats(
    key: BadgeKey,
    session: SessionDep,
    settings: SettingsDep,
    _: AnalyticsKey,
    days: Annotated[
        int, Query(ge=1, le=366, description="awards_per_day covers the last `days` program-time dates, today included")
    ] = 30,
) -> BadgeStats:
    """Holders, rarity, first and last award, awards per day (program time zone; days without awards left out)."""
    return await badges_service.stats(session, settings, key, days)


@admin.post(
    "/users/{external_id}/badges/{badge_key}",
    status_code=201,
    response_model=AwardOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def grant_badge(
    external_id: ExternalId,
    badge_key: BadgeKey,
    body: GrantIn,
    session: SessionDep,
    settings: SettingsDep,
    caller: AdminKey,
) -> AwardOut:
    """Grant a badge by hand (audited)."""
    return await badges_service.grant(session, settings, caller, external_id, badge_key, body.reason)


@admin.delete("/users/{external_id}/badges/{badge_key}", responses=responses(401, 403, 404, 422))
async def revoke_badge(
    external_id: ExternalId,
    badge_key: BadgeKey,
    session: SessionDep,
    settings: SettingsDep,
    caller: AdminKey,
    reason: Annotated[str | None, Query(max_length=500)] = None,
    reset_progress: Annotated[bool, Query(description="As the body's `reset_progress`")] = False,
    body: Annotated[RevokeIn | None, Body()] = None,
) -> dict[str, Any]:
    """Revoke a badge (audited); the reason comes in the body or as `?reason=`. `reset_progress` also clears
    the member's progress toward it, so only new activity can earn it again."""
    why = body.reason if body else (reason or "").strip()
    if not why:
        raise InvalidInput(
            "A reason is required", code="reason_required", details=[{"field": "reason", "message": "required"}]
        )
    reset = reset_progress or bool(body and body.reset_progress)  # asked for either way
    return await badges_service.revoke(session, settings, caller, external_id, badge_key, why, reset)


@admin.get("/users/{external_id}/badges", response_model=list[AwardEvidence], responses=responses(401, 403, 404))
async def member_awards(external_id: ExternalId, session: SessionDep, _: AdminKey) -> list[AwardEvidence]:
    """A member's awards with the evidence recorded for each (why they hold it)."""
    return await badges_service.evidence(session, external_id)


@router.get("/v1/me/badges", response_model=list[MemberBadge], responses=responses(401, 403))
async def my_badges(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, locale: LocaleDep
) -> list[MemberBadge]:
    """Every badge the caller can see: earned, and locked with live progress and rarity."""
    return await badges_service.collection(session, settings, user, locale)


@router.get("/v1/badges/{key}", response_model=MemberBadge, responses=responses(401, 403, 404))
async def badge_detail(
    key: BadgeKey, session: SessionDep, settings: SettingsDep, user: CurrentUser, locale: LocaleDep
) -> MemberBadge:
    """Details of one badge for the caller."""
    return await badges_service.member_badge(session, settings, user, key, locale)


@router.get("/v1/me/badges/{key}/share", response_model=ShareOut, responses=responses(401, 403, 404))
async def share_badge(
    key: BadgeKey, session: SessionDep, settings: SettingsDep, user: CurrentUser, locale: LocaleDep
) -> ShareOut:
    """What onShareAppMessage / onShareTimeline need for a badge the caller holds."""
    return await badges_service.share(session, settings, user, key, locale)
