"""The Annotated dependencies endpoints use to say who may call them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import service as auth_service
from app.auth import tokens
from app.auth.scopes import Scope
from app.config import Settings
from app.errors import Forbidden, Unauthorized
from app.kit.db import Database, SessionDep, commit
from app.kit.deps import SettingsDep
from app.models import User

_bearer = HTTPBearer(auto_error=False, description="A member JWT from /v1/auth/wechat/login, or an API key")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(creds: HTTPAuthorizationCredentials | None) -> str:
    if creds is None or not creds.credentials:
        raise Unauthorized("Missing bearer credentials", code="missing_credentials")
    return creds.credentials


async def current_user(session: SessionDep, settings: SettingsDep, creds: BearerDep) -> User:
    """A Mini Program member; an API key is refused here (keys never act as a member)."""
    token = _token(creds)
    claims = tokens.decode_user_token(settings, token)
    if claims is None:
        if await auth_service.verify_api_key(session, settings, token) is not None:
            raise Forbidden("API keys cannot act as a member; use a member token", code="member_token_required")
        raise Unauthorized("Invalid or expired token", code="invalid_token")
    user_id, gen = claims
    user = await session.get(User, user_id)
    if user is None or (gen is not None and gen != tokens.born(user.created_at)):
        raise Unauthorized("Token refers to an unknown member", code="invalid_token")
    return user


async def verify_key(db: Database, settings: Settings, token: str) -> auth_service.KeyPrincipal | None:
    """An API key checked in a short transaction of its own, opened only for a key stored in the database.

    Why not the request's session: a request-scoped session costs ~0.2 ms of Python per request even when
    nothing uses it, and the busiest caller (`POST /v1/events`) does its work in a shared transaction of
    its own (group commit). The key is still read from the database on every call, so a revoked key stops
    working at once, in every process.
    """
    principal = auth_service.bootstrap_principal(settings, token)
    if principal is not None or tokens.split_prefix(token) is None:
        return principal
    async with db.sessionmaker() as session:
        principal = await auth_service.verify_api_key(session, settings, token)
        await commit(session)  # the throttled last_used_at
    return principal


def require_scope(scope: Scope) -> Callable[..., Awaitable[auth_service.KeyPrincipal]]:
    async def dependency(request: Request, settings: SettingsDep, creds: BearerDep) -> auth_service.KeyPrincipal:
        token = _token(creds)
        principal = await verify_key(request.app.state.db, settings, token)
        if principal is None:
            if tokens.decode_user_token(settings, token) is not None:
                raise Forbidden("Member tokens cannot call this endpoint", code="api_key_required")
            raise Unauthorized("Invalid or revoked API key", code="invalid_api_key")
        if not principal.allows(scope.value):
            raise Forbidden(
                f"API key lacks the '{scope.value}' scope", code="insufficient_scope", details={"required": scope.value}
            )
        return principal

    dependency.__name__ = f"require_{scope.name}"
    return dependency


CurrentUser = Annotated[User, Depends(current_user)]
AdminKey = Annotated[auth_service.KeyPrincipal, Depends(require_scope(Scope.admin))]
EventsKey = Annotated[auth_service.KeyPrincipal, Depends(require_scope(Scope.events_write))]
UsersKey = Annotated[auth_service.KeyPrincipal, Depends(require_scope(Scope.users_write))]
AnalyticsKey = Annotated[auth_service.KeyPrincipal, Depends(require_scope(Scope.analytics_read))]
