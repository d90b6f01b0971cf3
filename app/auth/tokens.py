"""Member access tokens (JWT, HS256) and API-key secrets."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import jwt

from app.config import Settings
from app.kit.clock import utcnow

KEY_PREFIX = "lk_"
ISSUER = "laurel"


def born(created_at: datetime) -> int:
    """A member row's birth, in microseconds: with the id, it names that row and no later one given the same id."""
    return round(created_at.timestamp() * 1_000_000)


def issue_user_token(
    settings: Settings, user_id: int, ttl: int | None = None, created_at: datetime | None = None
) -> tuple[str, int]:
    """A member's bearer token, for the program's token lifetime unless `ttl` (seconds) says less. `created_at`
    (the member row's) binds the token to that row: a member deleted (folded into another) and an id handed out
    again (SQLite reuses the highest rowid) must not let the old token open the new member."""
    now = utcnow()
    ttl = min(ttl, settings.jwt_ttl_seconds) if ttl else settings.jwt_ttl_seconds
    payload: dict[str, object] = {
        "sub": str(user_id),
        "typ": "user",
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
    }
    if created_at is not None:
        payload["gen"] = born(created_at)
    return jwt.encode(payload, settings.jwt_secret, algorithm="HS256"), ttl


def decode_user_token(settings: Settings, token: str) -> tuple[int, int | None] | None:
    """(user id, the member row's birth if the token names it) of a valid member token, else None (expired,
    forged, or not a member token)."""
    try:
        payload = jwt.decode(
            token, settings.jwt_secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "user":
        return None
    try:
        gen = payload.get("gen")
        user_id = int(payload["sub"])
    except (TypeError, ValueError):
        return None
    if not 0 < user_id < 2**63:
        return None  # no member row has such an id (a bigint): not a 422 from the lookup
    return user_id, (gen if isinstance(gen, int) and not isinstance(gen, bool) else None)


def new_api_key() -> tuple[str, str, str]:
    """(full key, lookup prefix, sha256 hash). Keys are 190+ bits of randomness, so a plain hash suffices."""
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    full = f"{KEY_PREFIX}{prefix}_{secret}"
    return full, prefix, hash_key(full)


def hash_key(full: str) -> str:
    return hashlib.sha256(full.encode()).hexdigest()


def split_prefix(full: str) -> str | None:
    if not full.startswith(KEY_PREFIX):
        return None
    rest = full[len(KEY_PREFIX) :]
    prefix, sep, _ = rest.partition("_")
    return prefix if sep and len(prefix) == 8 else None
