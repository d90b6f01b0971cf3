"""Admin leaderboards: definitions (the admin web app's contract) and reports on any period."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.auth.deps import AdminKey
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.spreadsheet import BOM, BOM_HELP
from app.leaderboards import service as lb_service
from app.leaderboards.schemas import (
    KEY_PATTERN,
    AdminTop,
    Distribution,
    LeaderboardCreate,
    LeaderboardOut,
    LeaderboardReplace,
    LeaderboardUpdate,
    PeriodStat,
    Status,
)

router = APIRouter(prefix="/v1/admin/leaderboards", tags=["admin"])

BoardKey = Annotated[str, Path(min_length=1, max_length=64, pattern=KEY_PATTERN)]
PeriodQuery = Annotated[str | None, Query(max_length=16, description="current (default), previous, or a period id")]


@router.post("", status_code=201, response_model=LeaderboardOut, responses=responses(401, 403, 409, 422))
async def create_board(
    body: LeaderboardCreate, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> LeaderboardOut:
    """Create a leaderboard (draft unless `status` says otherwise)."""
    return lb_service.to_out(await lb_service.create(session, body), settings)


@router.get("", response_model=list[LeaderboardOut], responses=responses(401, 403))
async def list_boards(
    session: SessionDep, settings: SettingsDep, _: AdminKey, status: Annotated[Status | None, Query()] = None
) -> list[LeaderboardOut]:
    """All leaderboards, optionally of one status."""
    return [lb_service.to_out(b, settings) for b in await lb_service.list_all(session, status)]


@router.get("/{key}", response_model=LeaderboardOut, responses=responses(401, 403, 404))
async def get_board(key: BoardKey, session: SessionDep, settings: SettingsDep, _: AdminKey) -> LeaderboardOut:
    """One leaderboard's definition."""
    return lb_service.to_out(await lb_service.get(session, key), settings)


@router.put("/{key}", response_model=LeaderboardOut, responses=responses(401, 403, 404, 409, 422))
async def replace_board(
    key: BoardKey, body: LeaderboardReplace, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> LeaderboardOut:
    """Replace a definition; metric and period are fixed once the board has scores."""
    return lb_service.to_out(await lb_service.replace(session, key, body), settings)


@router.patch("/{key}", response_model=LeaderboardOut, responses=responses(401, 403, 404, 409, 422))
async def update_board(
    key: BoardKey, body: LeaderboardUpdate, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> LeaderboardOut:
    """Change some fields (e.g. `{"status": "active"}`)."""
    return lb_service.to_out(await lb_service.update(session, key, body), settings)


@router.delete("/{key}", status_code=204, responses=responses(401, 403, 404))
async def delete_board(key: BoardKey, session: SessionDep, _: AdminKey) -> Response:
    """Delete a leaderboard and all its scores (archive it instead to keep past periods readable)."""
    await lb_service.delete(session, key)
    return Response(status_code=204)


_NOT_VIEWS = frozenset({"period", "limit", "bins", "bom"})


def _view_filters(request: Request) -> dict[str, str]:
    """`city=` or an attribute dimension (`category=shoes`), as members ask for a view; one at a time."""
    return {name: value for name, value in request.query_params.items() if name not in _NOT_VIEWS}


@router.get("/{key}/periods", response_model=list[PeriodStat], responses=responses(401, 403, 404))
async def board_periods(key: BoardKey, session: SessionDep, settings: SettingsDep, _: AdminKey) -> list[PeriodStat]:
    """Participants per period, newest first."""
    return await lb_service.periods(session, settings, key)


@router.get("/{key}/distribution", response_model=Distribution, responses=responses(401, 403, 404, 422))
async def board_distribution(
    key: BoardKey, request: Request, session: SessionDep, settings: SettingsDep, _: AdminKey,
    period: PeriodQuery = None, bins: Annotated[int, Query(ge=1, le=100)] = 10,
    city: Annotated[str | None, Query(max_length=64, description="A city view (or any attribute dimension)")] = None,
) -> Distribution:
    """Histogram of a period's scores in equal-width bins, of the whole board or one city or attribute view."""
    return await lb_service.distribution(session, settings, key, period, bins, _view_filters(request))


@router.get("/{key}/top", response_model=AdminTop, responses=responses(401, 403, 404, 422))
async def board_top(
    key: BoardKey, request: Request, session: SessionDep, settings: SettingsDep, _: AdminKey,
    period: PeriodQuery = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    city: Annotated[str | None, Query(max_length=64, description="A city view (or any attribute dimension)")] = None,
) -> AdminTop:
    """The top N of any period and view, unmasked, with members' ids (prizes per city, say)."""
    return await lb_service.admin_top(session, settings, key, period, limit, _view_filters(request))


@router.get(
    "/{key}/export.csv",
    response_class=StreamingResponse,
    responses={**responses(401, 403, 404, 422), 200: {"content": {"text/csv": {}}, "description": "CSV"}},
)
async def export_csv(
    key: BoardKey, request: Request, session: SessionDep, settings: SettingsDep, _: AdminKey,
    period: PeriodQuery = None,
    city: Annotated[str | None, Query(max_length=64, description="A city view (or any attribute dimension)")] = None,
    bom: Annotated[bool, Query(description=BOM_HELP)] = False,
) -> StreamingResponse:
    """Every participant of a period (and view) in rank order, as CSV."""
    view_key, stem = await lb_service.export_target(session, settings, key, period, _view_filters(request))
    filename = f"{stem}.csv"
    return StreamingResponse(
        lb_service.export_rows(request.app.state.db.sessionmaker, view_key, prefix=BOM if bom else ""),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
