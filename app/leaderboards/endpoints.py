"""Member leaderboards: the active boards, one board's ranked view, and the member's privacy preference."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from app.auth.deps import CurrentUser
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.leaderboards import service as lb_service
from app.leaderboards.schemas import (
    KEY_PATTERN,
    VIEW_QUERY_PARAMETERS,
    BoardSummary,
    BoardView,
    Preferences,
    PreferencesIn,
)

router = APIRouter(tags=["leaderboards"])

BoardKey = Annotated[str, Path(min_length=1, max_length=64, pattern=KEY_PATTERN)]
# Query parameters with a fixed meaning; any other one may name an attribute dimension of the board.
_RESERVED = VIEW_QUERY_PARAMETERS | {"city", "category"}


@router.get("/v1/leaderboards", response_model=list[BoardSummary], responses=responses(401, 403))
async def list_boards(session: SessionDep, settings: SettingsDep, _: CurrentUser) -> list[BoardSummary]:
    """Active leaderboards with their current period."""
    return await lb_service.active_boards(session, settings)


@router.get("/v1/leaderboards/{key}", response_model=BoardView, responses=responses(401, 403, 404, 422))
async def get_board(
    key: BoardKey,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    period: Annotated[str, Query(max_length=16, description="current, previous, or a period id")] = "current",
    city: Annotated[str | None, Query(max_length=64)] = None,
    # No cap here: how long a view value may be depends on the dimension's name (service._resolve_filter).
    category: Annotated[str | None, Query()] = None,
    scope: Annotated[Literal["friends"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> BoardView:
    """A page of the board with the caller's own rank and neighbours; other members masked where required."""
    filters = {"city": city or "", "category": category or ""}
    for name, value in request.query_params.items():
        if name not in _RESERVED:
            filters[name] = value  # an unknown dimension or an overlong value is a 422 (service._resolve_filter)
    return await lb_service.view(session, settings, user, key, period=period, filters=filters, scope=scope,
                                 limit=limit, offset=offset)


@router.get("/v1/me/preferences", response_model=Preferences, responses=responses(401, 403))
async def get_preferences(user: CurrentUser) -> Preferences:
    """The caller's privacy preferences."""
    return lb_service.preferences(user)


@router.put("/v1/me/preferences", response_model=Preferences, responses=responses(401, 403, 422))
async def put_preferences(body: PreferencesIn, session: SessionDep, user: CurrentUser) -> Preferences:
    """Opt out of (or back into) showing your name on leaderboards; you still see your own rank."""
    return await lb_service.set_preferences(session, user, body.leaderboard_opt_out)
