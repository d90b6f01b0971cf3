"""Analytics for the admin web app (scope `analytics:read`, which `admin` implies): read-only, JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.analytics import service as analytics
from app.analytics.schemas import BadgeReportRow, ChallengeReportRow, Overview, Retention, TierReportRow
from app.auth.deps import AnalyticsKey
from app.badges.schemas import BADGE_KEY
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.schemas import Instant
from app.kit.spreadsheet import BOM, BOM_HELP

router = APIRouter(prefix="/v1/admin/analytics", tags=["admin"])

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV, a header line first"}
}


Bom = Annotated[bool, Query(description=BOM_HELP)]


def _csv(
    name: str, columns: list[str], rows: list[BadgeReportRow] | list[ChallengeReportRow] | list[TierReportRow],
    bom: bool,
) -> Response:
    return Response(
        (BOM if bom else "") + analytics.to_csv(columns, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/overview", response_model=Overview, responses=responses(401, 403))
async def overview(session: SessionDep, _: AnalyticsKey) -> Overview:
    """Members, activity, badges per member, challenge participation and points outstanding, as of now."""
    return await analytics.overview(session)


@router.get("/retention", response_model=Retention, responses=responses(401, 403, 404, 422))
async def retention(
    session: SessionDep,
    _: AnalyticsKey,
    days: Annotated[int, Query(ge=1, le=365, description="The retention horizon: day-N retention")] = 7,
    badge: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=BADGE_KEY, description="Compare this badge's earners")
    ] = None,
    tier: Annotated[str | None, Query(min_length=1, max_length=64, description="Only members of this tier")] = None,
    segment: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only members carrying this segment tag")
    ] = None,
    cohort_from: Annotated[Instant | None, Query(description="Default: 90 days before cohort_until")] = None,
    cohort_until: Annotated[Instant | None, Query(description="Default: `days` days ago")] = None,
) -> Retention:
    """Retention of badge earners against the other members of the same cohort (see `definition`)."""
    return await analytics.retention(
        session, days=days, badge=badge, tier=tier, segment=segment, cohort_from=cohort_from,
        cohort_until=cohort_until,
    )


@router.get("/badges", response_model=list[BadgeReportRow], responses=responses(401, 403))
async def badge_report(session: SessionDep, _: AnalyticsKey) -> list[BadgeReportRow]:
    """Every badge (any status) with holders, awards, rarity and its first and last award."""
    return await analytics.badge_report(session)


@router.get("/badges.csv", response_class=Response, responses={**responses(401, 403), **CSV_RESPONSE})
async def badge_report_csv(session: SessionDep, _: AnalyticsKey, bom: Bom = False) -> Response:
    """The badge report as CSV."""
    return _csv("badges", list(BadgeReportRow.model_fields), await analytics.badge_report(session), bom)


@router.get("/challenges", response_model=list[ChallengeReportRow], responses=responses(401, 403))
async def challenge_report(session: SessionDep, _: AnalyticsKey) -> list[ChallengeReportRow]:
    """Every challenge with participations by status and its completion rate."""
    return await analytics.challenge_report(session)


@router.get("/challenges.csv", response_class=Response, responses={**responses(401, 403), **CSV_RESPONSE})
async def challenge_report_csv(session: SessionDep, _: AnalyticsKey, bom: Bom = False) -> Response:
    """The challenge report as CSV."""
    return _csv("challenges", list(ChallengeReportRow.model_fields), await analytics.challenge_report(session), bom)


@router.get("/tiers", response_model=list[TierReportRow], responses=responses(401, 403))
async def tier_report(session: SessionDep, _: AnalyticsKey) -> list[TierReportRow]:
    """Members, activity, badges and challenge participation by member tier."""
    return await analytics.tier_report(session)


@router.get("/tiers.csv", response_class=Response, responses={**responses(401, 403), **CSV_RESPONSE})
async def tier_report_csv(session: SessionDep, _: AnalyticsKey, bom: Bom = False) -> Response:
    """The tier report as CSV."""
    return _csv("tiers", list(TierReportRow.model_fields), await analytics.tier_report(session), bom)
