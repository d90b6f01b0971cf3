"""Member access tokens (JWT, HS256) and API-key secrets."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import jwt

from app.config import Settings
from app.kit.clock import utcnow

KEY_PREFIX = "lk_"
ISSUER = "laurel"


def issue_user_token(settings: Settings, user_id: int, ttl: int | None = None) -> tuple[str, int]:
    """A member's bearer token, for the program's token lifetime unless `ttl` (seconds) says less."""
    now = utcnow()
    ttl = min(ttl, settings.jwt_ttl_seconds) if ttl else settings.jwt_ttl_seconds
    payload = {
        "sub": str(user_id),
        "typ": "user",
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
    }
    return jwt.encode(payload, settings.jwt_secret, algorithm="HS256"), ttl


def decode_user_token(settings: Settings, token: str) -> int | None:
    """The user id in a valid member token, else None (expired, forged, or not a member token)."""
    try:
        payload = jwt.decode(
            token, settings.jwt_secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "user":
        return None
    try:
        return int(payload["sub"])
    except (TypeError, ValueError):
        return None


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
