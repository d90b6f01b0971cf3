"""`X-Laurel-Signature: t=<unix>,v1=<hex hmac-sha256(secret, f"{t}.{body}")>` — timestamped so receivers can
refuse replays (compare `t` with their clock) and verify with a constant-time compare."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Laurel-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance_seconds: int = 300, now: int | None = None) -> bool:
    """What a receiver does: parse, check the age, compare in constant time."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - t) > tolerance_seconds:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)
