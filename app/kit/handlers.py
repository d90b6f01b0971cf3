"""Exception handlers: every error leaves as {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import LaurelError, error_body
from app.kit.cache import DefinitionCache
from app.kit.schemas import FieldError, printable

log = logging.getLogger("laurel.errors")


def validation_details(errors: list[Any], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors in the API's shape (`field`, `loc`, `message`, `type`); `prefix` roots them (`body`)."""
    out = []
    for err in errors:
        # A key of the body may hold an unpaired surrogate (Python's JSON parser lets one through): named
        # as U+FFFD, since the reply must encode as UTF-8.
        cause = (err.get("ctx") or {}).get("error")
        named = cause.loc if isinstance(cause, FieldError) else ()
        loc = [*prefix, *(printable(str(p)) for p in (*err.get("loc", ()), *named))]
        message = err.get("msg")
        out.append({"field": ".".join(loc), "loc": loc, "message": printable(message) if isinstance(message, str)
                    else message, "type": err.get("type")})
    return out


async def _laurel_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LaurelError)
    return JSONResponse(
        jsonable_encoder(error_body(exc.code, exc.message, exc.details)), status_code=exc.status, headers=exc.headers
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(list(exc.errors()))
    first = details[0]["field"] if details else ""
    msg = f"Invalid request: {first}: {details[0]['message']}" if details else "Invalid request"
    return JSONResponse(jsonable_encoder(error_body("validation_error", msg, details)), status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    return JSONResponse(
        error_body(code, str(exc.detail), None), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


# Deadlock and serialization failures (PostgreSQL), a busy database (SQLite), and a unique key taken by a
# concurrent request: the whole transaction was rolled back, so the request can simply run again (see
# RetryConflictsMiddleware).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
RETRY_HEADER = b"x-laurel-retryable"


def is_retryable(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code in RETRYABLE_SQLSTATES or "database is locked" in str(orig)


# Values the database refuses (a NUL in text, an integer beyond 64 bits, a date out of range) are the
# caller's input, and the transaction was rolled back: a 422, not a 500.
INVALID_VALUE_SQLSTATES = frozenset({"22001", "22021", "22P05", "22003", "22008", "22007", "22P02", "54000"})


def is_invalid_value(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    # asyncpg refuses some values before sending them (e.g. an integer beyond int64)
    client_side = "invalid input for query argument" in str(orig)
    return isinstance(exc, DataError) or code in INVALID_VALUE_SQLSTATES or client_side


def is_unique_violation(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code == "23505" or "UNIQUE constraint failed" in str(orig)


def is_reference_gone(exc: DBAPIError) -> bool:
    """A row this request wrote refers to one that is gone: a board, badge or challenge deleted while this
    process still had it cached (see kit.cache), or a member folded into another meanwhile."""
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code == "23503" or "FOREIGN KEY constraint failed" in str(orig)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if is_reference_gone(exc):
        # The definitions cached here may name what was deleted: drop them all, and run the request again (it was
        # rolled back whole). An event scoring a deleted board is then taken without it, not lost or a 500.
        log.warning("a referenced row is gone: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        DefinitionCache.invalidate_all()
        return JSONResponse(
            error_body("conflict", "Something this request refers to was deleted meanwhile; retry it", None),
            status_code=409,
            headers={RETRY_HEADER.decode(): "1"},
        )
    if is_unique_violation(exc):
        # A concurrent request stored the same key between this one's check and its write (two admins
        # creating one badge key). Run again, the check sees that row and answers as it would have. Logged:
        # one that persists through the retries is a missing check, not a race.
        log.warning("unique key taken during the request: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        return JSONResponse(
            error_body("conflict", "A concurrent request wrote the same record; this one was rolled back", None),
            status_code=409,
            headers={RETRY_HEADER.decode(): "1"},
        )
    if is_invalid_value(exc):
        return JSONResponse(
            error_body("invalid_value", "A value in the request is out of range or not storable", None), 422
        )
    if is_unreachable(exc):
        return await _unavailable(request, exc)
    if is_retryable(exc):
        return JSONResponse(
            error_body("transaction_conflict", "The request collided with a concurrent one; retry it", None),
            status_code=503,
            headers={"Retry-After": "1", RETRY_HEADER.decode(): "1"},
        )
    return await _unhandled(request, exc)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    """The database (or another backing service) cannot be reached: nothing was applied, and the caller may
    retry; a 503 with Retry-After, as /readyz reports, not a 500."""
    log.error("backing service unreachable: %r", exc)
    return JSONResponse(
        error_body("service_unavailable", "The service cannot reach its database; retry later", None),
        status_code=503,
        headers={"Retry-After": "5"},
    )


# The database is there but cannot take this request now: out of connections (53300) or other resources (53xxx),
# starting up or shutting down (57P03, 57P01), a broken connection (08xxx). Nothing was applied: 503, retry later.
# Also a database that is not there (3D000: dropped, or a wrong name) or not migrated (42P01, an undefined table;
# SQLite's "no such table"): the operator's to fix, and nothing was applied.
UNAVAILABLE_SQLSTATE_PREFIXES = ("53", "57P01", "57P02", "57P03", "08", "3D000", "42P01")


def connection_lost(exc: BaseException) -> bool:
    """asyncpg's own error for a connection the server closed under it (a restart, a failover, a terminated
    backend), or an error it caused: not a PostgresError, and reaching us as it is (or as the adapter's
    InterfaceError) from the statements sent straight through the driver."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_unreachable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc.orig, ConnectionError | TimeoutError):
        return True
    if exc.orig is not None and connection_lost(exc.orig):
        return True
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    if code is None and "no such table" in str(exc.orig):
        return True
    return isinstance(code, str) and code.startswith(UNAVAILABLE_SQLSTATE_PREFIXES)


async def _overflow(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body("invalid_value", "A value in the request is out of range", None), 422)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    if connection_lost(exc):
        return await _unavailable(request, exc)
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal_error", "Internal server error", None), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(LaurelError, _laurel_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OverflowError, _overflow)
    # Raised as they are by the driver when it cannot connect (ConnectionRefusedError, a connect timeout).
    app.add_exception_handler(ConnectionError, _unavailable)
    app.add_exception_handler(TimeoutError, _unavailable)
    app.add_exception_handler(Exception, _unhandled)
