"""Picking a locale from Accept-Language (zh-CN and en are the program's languages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header


def pick_locale(header: str | None, available: list[str] | None = None) -> str:
    """Best of `available` for the header's preferences; defaults to "en"."""
    available = available or ["en", "zh-CN"]
    if not header:
        return "en"
    prefs: list[tuple[float, str]] = []
    for part in header.split(","):
        piece = part.strip()
        if not piece:
            continue
        lang, _, q = piece.partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        prefs.append((weight, lang.strip()))
    for _weight, lang in sorted(prefs, key=lambda p: -p[0]):
        low = lang.lower()
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
