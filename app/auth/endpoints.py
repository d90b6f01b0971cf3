"""WeChat login and API-key administration."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.auth import service as auth_service
from app.auth.deps import AdminKey
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, LoginOut, WeChatLoginIn
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep, WeChatDep
from app.users import service as users_service

router = APIRouter(tags=["auth"])


@router.post("/v1/auth/wechat/login", response_model=LoginOut, responses=responses(401, 403, 422, 429, 503))
async def wechat_login(
    body: WeChatLoginIn, request: Request, session: SessionDep, settings: SettingsDep, wechat: WeChatDep
) -> LoginOut:
    """Exchange a wx.login code for a Laurel member token."""
    # Kept in the request's scope, which a replay of the request (after a lost race) shares.
    exchanged = request.scope.setdefault("laurel.wechat_sessions", {})
    user, token, ttl = await auth_service.wechat_login(session, settings, wechat, body.code, exchanged)
    me = await users_service.me(session, user)
    return LoginOut(access_token=token, expires_in=ttl, user=me)


@router.post(
    "/v1/admin/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    tags=["admin"],
    responses=responses(401, 403, 422),
)
async def create_api_key(body: ApiKeyCreate, session: SessionDep, caller: AdminKey) -> ApiKeyCreated:
    """Create an API key; the full key is in this response only."""
    key, full = await auth_service.create_api_key(
        session, body.name, [s.value for s in body.scopes], created_by=caller.name
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=full)


@router.get("/v1/admin/api-keys", response_model=list[ApiKeyOut], tags=["admin"], responses=responses(401, 403))
async def list_api_keys(session: SessionDep, _: AdminKey) -> list[ApiKeyOut]:
    """List API keys (never the secrets)."""
    return [ApiKeyOut.model_validate(k) for k in await auth_service.list_api_keys(session)]


@router.delete(
    "/v1/admin/api-keys/{key_id}", response_model=ApiKeyOut, tags=["admin"], responses=responses(401, 403, 404)
)
async def revoke_api_key(key_id: int, session: SessionDep, _: AdminKey) -> ApiKeyOut:
    """Revoke a key; it stops working on the next request."""
    return ApiKeyOut.model_validate(await auth_service.revoke_api_key(session, key_id))


@router.post(
    "/v1/admin/api-keys/{key_id}/revoke", response_model=ApiKeyOut, tags=["admin"], responses=responses(401, 403, 404)
)
async def revoke_api_key_action(key_id: int, session: SessionDep, _: AdminKey) -> ApiKeyOut:
    """Revoke a key (action form of DELETE)."""
    return ApiKeyOut.model_validate(await auth_service.revoke_api_key(session, key_id))
