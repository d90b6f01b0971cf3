"""CSV cells that a spreadsheet opens as text, never as a formula (CSV injection)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.kit.clock import shown

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A UTF-8 byte-order mark before the header, on request (`?bom=true`): Excel (a Chinese Windows one above all)
# reads a CSV without it in the local code page and garbles Chinese names; scripts are better served without.
BOM = "\ufeff"
BOM_HELP = "Start with a UTF-8 byte-order mark, so that Excel reads Chinese text right"


def safe_text(value: str | None) -> str:
    """Member- or operator-written text, defused: a leading formula character is quoted away."""
    text = value or ""
    return "'" + text if text[:1] in FORMULA_STARTS else text


def cell(value: Any) -> str:
    """Any report value as a cell: text defused, instants in ISO 8601 (program time), numbers as they are, None
    empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return shown(value)
    if isinstance(value, str):
        return safe_text(value)
    return str(value)
