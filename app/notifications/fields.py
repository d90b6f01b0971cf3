"""WeChat subscription-message values: render a template's fields and enforce WeChat's per-type limits.

WeChat answers 47003 for any value that breaks its type rules, so every value is checked (and truncated
where the type allows it) before a delivery is queued. Types are named by the key prefix: `thing1`,
`time2`, `phrase3`… (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/
subscribe-message/sendMessage.html).
"""

from __future__ import annotations

import re
from typing import Any

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_DATE = r"(?:\d{4}年\d{1,2}月\d{1,2}日|\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2})"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?"
_TIME_POINT = rf"(?:{_DATE}\s*)?{_CLOCK}"
_DATE_POINT = rf"{_DATE}(?:\s*{_CLOCK})?"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "number": re.compile(r"^-?\d+(?:\.\d+)?$"),
    "letter": re.compile(r"^[A-Za-z]+$"),
    "symbol": re.compile(rf"^[^\sA-Za-z0-9{_CJK}]+$"),
    "character_string": re.compile(r"^[\x21-\x7e]+$"),
    "time": re.compile(rf"^{_TIME_POINT}(?:\s*~\s*{_TIME_POINT})?$"),
    "date": re.compile(rf"^{_DATE_POINT}(?:\s*~\s*{_DATE_POINT})?$"),
    "amount": re.compile(r"^[¥￥$€£]?\d{1,10}(?:\.\d+)?元?$"),
    "phone_number": re.compile(r"^[\d+\-() ]+$"),
    "car_number": re.compile(rf"^[{_CJK}A-Za-z0-9][A-Za-z0-9]*[{_CJK}A-Za-z0-9]?$"),
    "phrase": re.compile(rf"^[{_CJK}]+$"),
}
# Longest value WeChat accepts per type.
_MAX_LEN: dict[str, int] = {
    "thing": 20,
    "short_thing": 5,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "time": 40,
    "date": 40,
    "amount": 14,
    "phone_number": 17,
    "car_number": 8,
    "name": 20,
    "phrase": 5,
}
# Types whose values may be shortened rather than refused (free text, not a number, date or code).
_TRUNCATABLE = frozenset({"thing", "short_thing", "character_string", "name"})
TYPES = frozenset(_MAX_LEN)
_KEY = re.compile(r"^([a-z_]+?)(\d+)$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FieldInvalid(ValueError):
    """A template value WeChat would refuse; `key` names the field (as WeChat's 47003 does)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"data.{key}.value invalid: {reason}")
        self.key = key
        self.reason = reason


def field_type(key: str) -> str:
    """`thing1` → `thing`; raises FieldInvalid for keys that are not a WeChat type plus a number."""
    m = _KEY.match(key)
    if not m or m.group(1) not in TYPES:
        raise FieldInvalid(key, f"unknown field type (expected one of {', '.join(sorted(TYPES))} plus a number)")
    return m.group(1)


def check_format(key: str, fmt: str) -> list[str]:
    """Validate one template field definition; returns the placeholders it uses."""
    field_type(key)
    rest = PLACEHOLDER.sub("", fmt)
    if "{" in rest or "}" in rest:
        raise FieldInvalid(key, "placeholders look like {name}; braces may not appear otherwise")
    return PLACEHOLDER.findall(fmt)


def _is_cjk(ch: str) -> bool:
    return bool(re.match(f"[{_CJK}]", ch))


def clean(key: str, value: str) -> str:
    """Return the value WeChat will accept for `key` (truncated if allowed), or raise FieldInvalid."""
    kind = field_type(key)
    value = " ".join(value.split())  # WeChat counts characters; collapse stray whitespace and newlines
    if not value:
        raise FieldInvalid(key, "value is empty")
    limit = _MAX_LEN[kind]
    if kind == "name" and any(_is_cjk(c) for c in value):
        limit = 10  # a Chinese (or mixed) name counts as Chinese: 10 characters
    if len(value) > limit:
        if kind not in _TRUNCATABLE:
            raise FieldInvalid(key, f"longer than {limit} characters for type {kind}")
        value = value[: limit - 1] + "…" if kind in ("thing", "name") else value[:limit]
    if kind == "name" and limit == 20 and not re.match(r"^[^\d" + _CJK + r"]+$", value):
        raise FieldInvalid(key, "a name is letters or Chinese characters")
    pattern = _PATTERNS.get(kind)
    if pattern is not None and not pattern.match(value):
        raise FieldInvalid(key, f"not a valid {kind} value: {value!r}")
    return value


def render(fields: dict[str, str], params: dict[str, Any]) -> dict[str, str]:
    """Fill each field's format with params and clean it; raises FieldInvalid naming the first bad field."""

    def sub(m: re.Match[str]) -> str:
        value = params.get(m.group(1))
        return "" if value is None else str(value)

    return {key: clean(key, PLACEHOLDER.sub(sub, fmt)) for key, fmt in fields.items()}
