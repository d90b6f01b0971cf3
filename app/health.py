"""Liveness and readiness probes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.errors import error_body

router = APIRouter(tags=["operations"])

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


@lru_cache
def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database unreachable or not migrated"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    head = head_revision()
    try:
        async with request.app.state.db.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    except Exception as exc:  # any driver error means "not ready", never a 500
        return JSONResponse(
            error_body("not_ready", "Database unreachable or not migrated", {"reason": type(exc).__name__}), 503
        )
    if current != head:
        return JSONResponse(
            error_body("not_ready", "Database migrations are not at head", {"current": current, "head": head}), 503
        )
    return JSONResponse({"status": "ready", "database": "ok", "migration": current})
