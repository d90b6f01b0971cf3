"""API keys (create/list/revoke/verify) and WeChat login."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository as keys_repo
from app.auth import tokens
from app.auth.scopes import ALL_SCOPES
from app.config import Settings
from app.errors import Forbidden, InvalidInput, NotFound, ServiceUnavailable, TooManyRequests, Unauthorized
from app.integrations.wechat import (
    HighRiskUser,
    InvalidCode,
    RateLimited,
    WeChatError,
    WeChatGateway,
    WeChatSession,
    WeChatUnavailable,
)
from app.kit.clock import utcnow
from app.models import ApiKey, User
from app.users import service as users_service


@dataclass(frozen=True)
class KeyPrincipal:
    """A verified API-key caller."""

    key_id: int | None
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def _validate_scopes(scopes: Sequence[str]) -> list[str]:
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown or not scopes:
        raise InvalidInput(
            "Unknown or empty scopes",
            code="invalid_scopes",
            details={"unknown": unknown, "allowed": sorted(ALL_SCOPES)},
        )
    return sorted(set(scopes))


async def create_api_key(
    session: AsyncSession, name: str, scopes: Sequence[str], created_by: str | None = None
) -> tuple[ApiKey, str]:
    """Returns the row and the full key, which is never retrievable again."""
    full, prefix, digest = tokens.new_api_key()
    key = ApiKey(name=name, prefix=prefix, key_hash=digest, scopes=_validate_scopes(scopes), created_by=created_by)
    await keys_repo.add(session, key)
    return key, full


async def list_api_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return await keys_repo.list_all(session)


async def revoke_api_key(session: AsyncSession, key_id: int) -> ApiKey:
    # No key has an id beyond a bigint: not a lookup the driver refuses (an OverflowError in the CLI).
    key = await keys_repo.get(session, key_id) if 0 < key_id < 2**63 else None
    if key is None:
        raise NotFound("API key not found", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    await session.flush()
    return key


def bootstrap_principal(settings: Settings, presented: str) -> KeyPrincipal | None:
    """The all-scope key from LAUREL_ADMIN_API_KEY, recognised without the database."""
    if settings.admin_api_key and hmac.compare_digest(presented.encode(), settings.admin_api_key.encode()):
        return KeyPrincipal(key_id=None, name="bootstrap", scopes=ALL_SCOPES)
    return None


async def verify_api_key(session: AsyncSession, settings: Settings, presented: str) -> KeyPrincipal | None:
    bootstrap = bootstrap_principal(settings, presented)
    if bootstrap is not None:
        return bootstrap
    return (await verify_stored_keys(session, [presented])).get(presented)


async def verify_stored_keys(session: AsyncSession, presented: Iterable[str]) -> dict[str, KeyPrincipal]:
    """Many stored keys checked in one query (the group commit of single events): the valid ones' principals."""
    by_prefix: dict[str, set[str]] = {}
    for full in set(presented):
        prefix = tokens.split_prefix(full)
        if prefix is not None:
            by_prefix.setdefault(prefix, set()).add(full)  # a forged token may share a real key's prefix
    if not by_prefix:
        return {}
    found: dict[str, KeyPrincipal] = {}
    used: list[int] = []
    now = utcnow()
    for key in await keys_repo.rows_by_prefixes(session, sorted(by_prefix)):
        for full in by_prefix[key.prefix]:
            if _valid(key, full):
                found[full] = KeyPrincipal(key_id=key.id, name=key.name, scopes=frozenset(key.scopes))
                if _stale(key.last_used_at, now) and key.id not in used:
                    used.append(key.id)
    if used:
        await keys_repo.touch(session, used, now)
    return found


def _valid(key: keys_repo.KeyRow, presented: str) -> bool:
    return key.revoked_at is None and hmac.compare_digest(key.key_hash, tokens.hash_key(presented))


def _stale(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether to record a use: throttled so a busy integrator does not write on every call."""
    return last_used_at is None or now - last_used_at > timedelta(minutes=1)


async def wechat_login(
    session: AsyncSession, settings: Settings, gateway: WeChatGateway, code: str,
    exchanged: dict[str, WeChatSession] | None = None,
) -> tuple[User, str, int]:
    """Exchange a wx.login code for our own token; WeChat's session_key never leaves the server.

    `exchanged`: codes this request already exchanged. A request replayed after its transaction lost a race
    (RetryConflictsMiddleware) must not send its code to WeChat again: a code is single-use, and the member would
    get "invalid code" for a login that had worked."""
    memo = exchanged if exchanged is not None else {}
    try:
        ws = memo.get(code) or await gateway.acode_to_session(code)
        memo[code] = ws
    except InvalidCode as exc:
        raise Unauthorized(
            "WeChat rejected the login code; call wx.login again",
            code="wechat_invalid_code",
            details={"errcode": exc.errcode},
        ) from exc
    except RateLimited as exc:
        raise TooManyRequests(
            "WeChat login rate limit reached; retry in a minute",
            code="wechat_rate_limited",
            headers={"Retry-After": "60"},
            details={"errcode": exc.errcode},
        ) from exc
    except HighRiskUser as exc:
        raise Forbidden(
            "WeChat restricted this account (high-risk user)",
            code="wechat_user_restricted",
            details={"errcode": exc.errcode},
        ) from exc
    except WeChatUnavailable as exc:
        raise ServiceUnavailable(
            "WeChat is unreachable; retry shortly", code="wechat_unavailable", headers={"Retry-After": "5"}
        ) from exc
    except WeChatError as exc:
        raise ServiceUnavailable(
            "WeChat login failed", code="wechat_error", details={"errcode": exc.errcode, "errmsg": exc.errmsg}
        ) from exc
    user = await users_service.find_or_create_by_openid(session, ws.openid, ws.unionid)
    token, ttl = tokens.issue_user_token(settings, user.id, created_at=user.created_at)
    return user, token, ttl
