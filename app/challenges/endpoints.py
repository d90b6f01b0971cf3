"""Challenges in the Mini Program: browse, join, and follow one's progress."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from app.auth.deps import CurrentUser
from app.challenges import service as challenges_service
from app.challenges.schemas import MemberChallenge, Participation
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.i18n import LocaleDep
from app.kit.pagination import PageDep, count_header

router = APIRouter(tags=["challenges"])

ChallengeKey = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/v1/challenges", response_model=list[MemberChallenge], responses=responses(401, 403))
async def list_challenges(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, locale: LocaleDep
) -> list[MemberChallenge]:
    """Published challenges that have not ended, with `eligible`, the reasons if not (their texts in the
    `Accept-Language`: zh-CN or en), and `joined`."""
    return await challenges_service.list_for_member(session, settings, user, locale)


@router.get("/v1/challenges/{key}", response_model=MemberChallenge, responses=responses(401, 403, 404))
async def get_challenge(
    key: ChallengeKey, session: SessionDep, settings: SettingsDep, user: CurrentUser, locale: LocaleDep
) -> MemberChallenge:
    """One published challenge as the caller sees it."""
    return await challenges_service.get_for_member(session, settings, user, key, locale)


@router.post("/v1/challenges/{key}/join", response_model=Participation, status_code=201,
             responses={200: {"model": Participation, "description": "Already joined: the same participation"},
                        **responses(401, 403, 404, 409)})
async def join_challenge(
    key: ChallengeKey, session: SessionDep, settings: SettingsDep, user: CurrentUser, response: Response,
    locale: LocaleDep,
) -> Participation:
    """Join the current instance (201); joining again returns the same participation (200). Not eligible: 403
    `not_eligible` with the reasons, their texts in the `Accept-Language`."""
    view, created = await challenges_service.join(session, settings, user, key, locale)
    if not created:
        response.status_code = 200
    return view


@router.get("/v1/me/challenges", response_model=list[Participation], responses=responses(401, 403))
async def my_challenges(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, page: PageDep, response: Response,
    status: Annotated[Literal["active", "completed", "expired"] | None, Query()] = None,
) -> list[Participation]:
    """The caller's joined challenges, newest first, with per-step progress, percent and time left (`limit`
    defaults to 50; the `X-Total-Count` header holds how many there are in all: a weekly challenge adds 52 a
    year)."""
    items, total = await challenges_service.my_challenges(session, settings, user, page.limit, page.offset, status)
    count_header(response, total)
    return items
