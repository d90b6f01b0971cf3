"""Challenge definitions, lifecycle and stats (admin web app)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from app.auth.deps import AdminKey, AnalyticsKey
from app.challenges import service as challenges_service
from app.challenges.schemas import ChallengeCreate, ChallengeOut, ChallengeReplace, ChallengeStats, ChallengeUpdate
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.pagination import PageDep, count_header

router = APIRouter(prefix="/v1/admin/challenges", tags=["admin", "challenges"])

ChallengeKey = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("", status_code=201, response_model=ChallengeOut, responses=responses(401, 403, 409, 422))
async def create_challenge(body: ChallengeCreate, session: SessionDep, _: AdminKey) -> ChallengeOut:
    """Create a challenge (a draft unless `status` is `published`)."""
    return challenges_service.to_out(await challenges_service.create(session, body))


@router.get("", response_model=list[ChallengeOut], responses=responses(401, 403))
async def list_challenges(
    session: SessionDep, page: PageDep, _: AdminKey, response: Response,
    status: Annotated[Literal["draft", "published", "archived"] | None, Query()] = None,
) -> list[ChallengeOut]:
    """All challenges, optionally by status (`limit`, default 50, and `offset` slice the array; the
    `X-Total-Count` header holds how many there are in all)."""
    items, total = await challenges_service.list_page(session, page.limit, page.offset, status)
    count_header(response, total)
    return items


@router.get("/{key}", response_model=ChallengeOut, responses=responses(401, 403, 404))
async def get_challenge(key: ChallengeKey, session: SessionDep, _: AdminKey) -> ChallengeOut:
    """One challenge."""
    return challenges_service.to_out(await challenges_service.get(session, key))


@router.put("/{key}", response_model=ChallengeOut, responses=responses(401, 403, 404, 409, 422))
async def replace_challenge(
    key: ChallengeKey, body: ChallengeReplace, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> ChallengeOut:
    """Replace the definition; once published, progress-breaking changes to steps and criteria are refused (409)."""
    return challenges_service.to_out(await challenges_service.update(session, settings, key, body))


@router.patch("/{key}", response_model=ChallengeOut, responses=responses(401, 403, 404, 409, 422))
async def update_challenge(
    key: ChallengeKey, body: ChallengeUpdate, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> ChallengeOut:
    """Change some fields; copy and icons can always change, progress-breaking changes are refused (409)."""
    return challenges_service.to_out(await challenges_service.update(session, settings, key, body))


@router.delete("/{key}", status_code=204, responses=responses(401, 403, 404, 409))
async def delete_challenge(key: ChallengeKey, session: SessionDep, _: AdminKey) -> Response:
    """Delete a challenge nobody has joined (otherwise archive it)."""
    await challenges_service.delete(session, key)
    return Response(status_code=204)


@router.post("/{key}/publish", response_model=ChallengeOut, responses=responses(401, 403, 404, 409, 422))
async def publish_challenge(key: ChallengeKey, session: SessionDep, _: AdminKey) -> ChallengeOut:
    """Make a draft visible to members."""
    return challenges_service.to_out(await challenges_service.publish(session, key))


@router.post("/{key}/archive", response_model=ChallengeOut, responses=responses(401, 403, 404))
async def archive_challenge(key: ChallengeKey, session: SessionDep, _: AdminKey) -> ChallengeOut:
    """Close a challenge: no more joins or progress; active participations expire."""
    return challenges_service.to_out(await challenges_service.archive(session, key))


@router.get("/{key}/stats", response_model=ChallengeStats, responses=responses(401, 403, 404))
async def challenge_stats(
    key: ChallengeKey, session: SessionDep, settings: SettingsDep, _: AnalyticsKey
) -> ChallengeStats:
    """Joined, active, completed, expired, completion rate, median time, per-step drop-off, per instance."""
    return await challenges_service.stats(session, settings, key)
