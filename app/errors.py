"""One error hierarchy; one handler renders every error as {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any


class LaurelError(Exception):
    """A failure the caller can act on; `code` is stable and machine-readable."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details
        self.headers = headers


class NotFound(LaurelError):
    status = 404
    code = "not_found"


class Conflict(LaurelError):
    status = 409
    code = "conflict"


class Unauthorized(LaurelError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str = "Missing or invalid credentials", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(LaurelError):
    status = 403
    code = "forbidden"


class InvalidInput(LaurelError):
    status = 422
    code = "validation_error"


class TooManyRequests(LaurelError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(LaurelError):
    status = 503
    code = "service_unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
            "required": ["code", "message"],
        }
    },
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for endpoints, so the documented error shape matches what is sent."""
    text = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict with current state",
        413: "Body too large",
        422: "Invalid input",
        429: "Rate limited",
        503: "Dependency unavailable",
    }
    return {
        s: {"description": text.get(s, "Error"), "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for s in statuses
    }
