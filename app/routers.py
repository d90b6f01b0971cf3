"""Every router, mounted in one place."""

from __future__ import annotations

from fastapi import FastAPI

from app import health
from app.analytics import endpoints as analytics_endpoints
from app.audit import endpoints as audit_endpoints
from app.auth import endpoints as auth_endpoints
from app.badges import endpoints as badges_endpoints
from app.challenges import admin_endpoints as challenges_admin_endpoints
from app.challenges import endpoints as challenges_endpoints
from app.events import endpoints as events_endpoints
from app.icons import endpoints as icons_endpoints
from app.leaderboards import admin_endpoints as leaderboards_admin_endpoints
from app.leaderboards import endpoints as leaderboards_endpoints
from app.notifications import endpoints as notifications_endpoints
from app.points import endpoints as points_endpoints
from app.users import endpoints as users_endpoints
from app.vouchers import endpoints as vouchers_endpoints
from app.webhooks import endpoints as webhooks_endpoints


def include_all(app: FastAPI) -> None:
    for router in (
        health.router,
        auth_endpoints.router,
        users_endpoints.router,
        events_endpoints.router,
        badges_endpoints.router,
        badges_endpoints.admin,
        points_endpoints.router,
        audit_endpoints.router,
        icons_endpoints.router,
        challenges_endpoints.router,
        challenges_admin_endpoints.router,
        vouchers_endpoints.router,
        vouchers_endpoints.admin_router,
        notifications_endpoints.router,
        notifications_endpoints.admin,
        webhooks_endpoints.admin,
        leaderboards_endpoints.router,
        leaderboards_admin_endpoints.router,
        analytics_endpoints.router,
    ):
        app.include_router(router)
