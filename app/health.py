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
def head_revisions() -> frozenset[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


# HEAD too (left out of the schema): load balancers and uptime checkers often probe with it.
@router.get("/healthz")
@router.head("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database unreachable or not migrated"}})
@router.head("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    heads = head_revisions()
    try:
        async with request.app.state.db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            current = frozenset(rows.scalars())
    except Exception as exc:  # any driver error means "not ready", never a 500
        return JSONResponse(
            error_body("not_ready", "Database unreachable or not migrated", {"reason": type(exc).__name__}), 503
        )
    if current != heads:
        return JSONResponse(
            error_body(
                "not_ready", "Database migrations are not at head", {"current": sorted(current), "head": sorted(heads)}
            ),
            503,
        )
    return JSONResponse({"status": "ready", "database": "ok", "migration": sorted(current)})
