"""Integrator member sync and the member's own profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.auth.deps import AdminKey, CurrentUser, UsersKey
from app.errors import responses
from app.kit.db import SessionDep
from app.users import service as users_service
from app.users.schemas import EXTERNAL_ID_PATTERN, FriendsIn, FriendsOut, MemberAdmin, MeOut, UserOut, UserUpsert

router = APIRouter(tags=["users"])

ExternalId = Annotated[str, Path(min_length=1, max_length=128, pattern=EXTERNAL_ID_PATTERN)]


@router.put(
    "/v1/users/{external_id}",
    response_model=UserOut,
    responses={201: {"model": UserOut, "description": "Created"}, **responses(401, 403, 409, 422)},
)
async def upsert_user(
    external_id: ExternalId, body: UserUpsert, session: SessionDep, _: UsersKey, response: Response
) -> UserOut:
    """Create or update a member (201 when created)."""
    user, created = await users_service.upsert(session, external_id, body)
    if created:
        response.status_code = 201
    return UserOut.model_validate(user)


@router.put("/v1/users/{external_id}/friends", response_model=FriendsOut, responses=responses(401, 403, 422))
async def set_friends(external_id: ExternalId, body: FriendsIn, session: SessionDep, _: UsersKey) -> FriendsOut:
    """Replace a member's friend list (used by friends leaderboards)."""
    return await users_service.set_friends(session, external_id, body.friends)


@router.get("/v1/me", response_model=MeOut, responses=responses(401, 403))
async def get_me(session: SessionDep, user: CurrentUser) -> MeOut:
    """The caller's profile, points and level."""
    return await users_service.me(session, user)


@router.get(
    "/v1/admin/users/{external_id}", response_model=MemberAdmin, tags=["admin"], responses=responses(401, 403, 404)
)
async def member_admin(external_id: ExternalId, session: SessionDep, _: AdminKey) -> MemberAdmin:
    """A member as an operator sees them: profile, points, level, WeChat ids and how many awards they hold."""
    return await users_service.admin_view(session, external_id)
