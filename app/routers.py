"""Every router, mounted in one place."""

from __future__ import annotations

from fastapi import FastAPI

from app import health
from app.auth import endpoints as auth_endpoints
from app.users import endpoints as users_endpoints


def include_all(app: FastAPI) -> None:
    for router in (health.router, auth_endpoints.router, users_endpoints.router):
        app.include_router(router)
