"""Picking a locale from Accept-Language (zh-CN and en are the program's languages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header


def preferences(header: str | None) -> list[str]:
    """The header's language tags, most wanted first (ties keep their order), lower-cased; a tag with q=0 is
    "not acceptable" and left out. Parameters may carry spaces ("zh-CN; q=0.1"). WeChat's own spelling "zh_CN"
    (what `wx.getSystemInfoSync().language` gives a Mini Program) is read as "zh-cn"."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag.strip() and q > 0:
            ranked.append((-q, i, tag.strip().lower().replace("_", "-")))
    return [tag for _q, _i, tag in sorted(ranked)]


def pick_locale(header: str | None, available: list[str] | None = None) -> str:
    """Best of `available` for the header's preferences; defaults to "en"."""
    available = available or ["en", "zh-CN"]
    for low in preferences(header):
        for cand in available:
            if cand.lower() == low:
                return cand
        for cand in available:
            if cand.lower().split("-")[0] == low.split("-")[0]:
                return cand
    return "en"


async def _locale(accept_language: Annotated[str | None, Header()] = None) -> str:
    return pick_locale(accept_language)


LocaleDep = Annotated[str, Depends(_locale)]
