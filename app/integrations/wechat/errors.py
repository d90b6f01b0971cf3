"""Typed WeChat errors, so callers never need to import wechatpy or requests to handle failures."""

from __future__ import annotations

# Token errcodes: 40001 invalid credential, 40014 invalid access_token, 42001 access_token expired.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# code2Session: 40029 invalid code, 40163 code already used.
INVALID_CODE_ERRCODES = frozenset({40029, 40163})
RATE_LIMITED_ERRCODE = 45011
HIGH_RISK_USER_ERRCODE = 40226
SYSTEM_BUSY_ERRCODE = -1


class WeChatError(Exception):
    """A failure reported by (or while talking to) the WeChat API.

    ``errcode`` is WeChat's errcode when it sent one, else ``None`` (e.g. an unexpected HTTP status).
    """

    def __init__(self, errcode: int | None, errmsg: str = "") -> None:
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg

    def __str__(self) -> str:
        return f"WeChat errcode={self.errcode}: {self.errmsg}"


class WeChatUnavailable(WeChatError):
    """WeChat gave no usable answer (network, timeout, HTTP 5xx, errcode -1, bad JSON): retryable."""


class InvalidCode(WeChatError):
    """The wx.login code is invalid, expired or already used (40029/40163): the client must log in again."""


class RateLimited(WeChatError):
    """Per-minute frequency limit hit (45011): retry after about a minute."""


class HighRiskUser(WeChatError):
    """WeChat blocked this login as a high-risk user (40226): do not retry."""


def error_for(errcode: int | None, errmsg: str) -> WeChatError:
    """Map a WeChat errcode to the most specific error class, keeping errcode and errmsg."""
    if errcode == SYSTEM_BUSY_ERRCODE:
        return WeChatUnavailable(errcode, errmsg)
    if errcode in INVALID_CODE_ERRCODES:
        return InvalidCode(errcode, errmsg)
    if errcode == RATE_LIMITED_ERRCODE:
        return RateLimited(errcode, errmsg)
    if errcode == HIGH_RISK_USER_ERRCODE:
        return HighRiskUser(errcode, errmsg)
    return WeChatError(errcode, errmsg)
