"""Inbox, subscription (consent) and WeChat template bodies."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StrictBool, WithJsonSchema, field_validator, model_validator

from app.kit.schemas import FieldError, ProgramTime, ReadModel, WriteModel
from app.notifications import fields as wechat_fields
from app.notifications import kinds

SubscribeResult = Literal["accept", "reject", "ban", "filter"]
# wx.requestSubscribeMessage also answers an accept with the voice or alert reminder switched on this way: an accept.
_ACCEPTS = {"acceptWithAudio": "accept", "acceptWithAlert": "accept"}


def _an_accept(value: object) -> object:
    return _ACCEPTS.get(value, value) if isinstance(value, str) else value


ReportedResult = Annotated[
    SubscribeResult,
    BeforeValidator(_an_accept),
    WithJsonSchema({"type": "string", "enum": ["accept", "acceptWithAudio", "acceptWithAlert", "reject", "ban",
                                               "filter"]}),
]
DeliveryStatus = Literal["inbox_only", "pending", "sending", "sent", "no_consent", "dropped", "failed"]


class NotificationOut(ReadModel):
    id: int
    kind: str
    title: str
    body: str
    params: dict[str, Any]
    created_at: ProgramTime
    read_at: ProgramTime | None
    read: bool


class InboxPage(ReadModel):
    items: list[NotificationOut]
    total: int
    unread_count: int
    limit: int
    offset: int


class ReadIn(WriteModel):
    """Mark notifications read: `{"ids": [...]}` or `{"all": true}`."""

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(default_factory=list, max_length=500)
    all: StrictBool = False

    @model_validator(mode="after")
    def _one_of(self) -> ReadIn:
        if not self.ids and not self.all:
            raise ValueError('give "ids" or "all": true')
        return self


class ReadOut(ReadModel):
    updated: int
    unread_count: int


class SubscriptionsIn(WriteModel):
    """What wx.requestSubscribeMessage answered, per template id; applied once per request_id."""

    request_id: str = Field(min_length=1, max_length=128)
    results: dict[str, ReportedResult] = Field(min_length=1, max_length=20)

    @field_validator("results", mode="before")
    @classmethod
    def _without_errmsg(cls, value: object) -> object:
        """wx.requestSubscribeMessage's answer carries `errMsg` ("requestSubscribeMessage:ok") beside the template
        ids; a Mini Program forwarding it as it is must not be refused for WeChat's status line."""
        if isinstance(value, dict) and "errMsg" in value:
            return {k: v for k, v in value.items() if k != "errMsg"}
        return value

    @model_validator(mode="after")
    def _template_ids(self) -> SubscriptionsIn:
        for template_id in self.results:
            if not template_id or len(template_id) > 128:
                raise ValueError("results: template ids are 1-128 characters")
        return self


class SubscriptionOut(ReadModel):
    template_id: str
    kinds: list[str]
    credits: int
    last_result: str | None
    ask: bool = Field(description="True when no credit is left and WeChat has not banned the template: the Mini "
                     "Program should ask again")


class SubscriptionsOut(ReadModel):
    templates: list[SubscriptionOut]
    duplicate: bool = False


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class TemplateIn(WriteModel):
    template_id: str = Field(min_length=1, max_length=128)

    @field_validator("template_id")
    @classmethod
    def _no_whitespace(cls, value: str) -> str:
        """WeChat's template ids have no spaces: "abc " would never match the id the Mini Program reports consent
        for, and every message would end as no_consent without an error anywhere."""
        if any(ch.isspace() for ch in value):
            raise ValueError("template_id must not contain whitespace")
        return value
    page: str | None = Field(default=None, max_length=256)
    fields: dict[str, str] = Field(min_length=1, max_length=10)
    miniprogram_state: Literal["developer", "trial", "formal"] = "formal"
    lang: Literal["zh_CN", "en_US", "zh_HK", "zh_TW"] = "zh_CN"
    enabled: StrictBool = True

    @field_validator("page")
    @classmethod
    def _mini_program_page(cls, value: str | None) -> str | None:
        """WeChat opens `page` inside the Mini Program ("pages/badge/detail?key=…"): a web URL or any other
        scheme is not a page of it, and blank is none (the message opens the Mini Program's home)."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        if _SCHEME.match(value) or any(c.isspace() for c in value):
            raise ValueError("must be a page path of the Mini Program (e.g. pages/badge/detail?key=vip), not a URL")
        return value

    @model_validator(mode="after")
    def _fields(self) -> TemplateIn:
        for key, fmt in self.fields.items():
            if len(fmt) > 200:
                raise FieldError(("fields", key), f"fields.{key}: at most 200 characters")
            try:
                if not wechat_fields.check_format(key, fmt):
                    # A fixed value is known now: refuse what WeChat would always refuse.
                    wechat_fields.clean(key, fmt)
            except wechat_fields.FieldInvalid as exc:
                raise FieldError(("fields", key), f"fields.{key}: {exc.reason}") from exc
        return self


class TemplateWarning(BaseModel):
    field: str
    message: str


class TemplateOut(ReadModel):
    kind: str
    template_id: str
    page: str | None
    fields: dict[str, str]
    miniprogram_state: str
    lang: str
    enabled: bool
    created_at: ProgramTime
    updated_at: ProgramTime
    warnings: list[TemplateWarning] = Field(
        default_factory=list,
        description="Fields naming a param the kind does not carry: they would render empty and WeChat would refuse "
        "the message (saved all the same)",
    )

    @classmethod
    def of(cls, row: Any) -> TemplateOut:
        out = cls.model_validate(row)
        out.warnings = [TemplateWarning(**w) for w in kinds.unknown_placeholders(out.kind, out.fields)]
        return out


class WeChatDeliveryOut(ReadModel):
    id: int
    status: str
    template_id: str
    data: dict[str, str]
    attempts: int
    next_attempt_at: ProgramTime
    bundle_id: int | None
    bundle_size: int
    msgid: str | None
    last_errcode: int | None
    last_errmsg: str | None
    sent_at: ProgramTime | None


class AdminNotificationOut(ReadModel):
    id: int
    user_id: int
    external_id: str | None
    kind: str
    params: dict[str, Any]
    created_at: ProgramTime
    read_at: ProgramTime | None
    status: DeliveryStatus
    wechat: WeChatDeliveryOut | None


class AdminNotificationsPage(ReadModel):
    items: list[AdminNotificationOut]
    total: int
    limit: int
    offset: int
    counts: dict[str, int] = Field(description="Notifications by WeChat delivery status (same member/kind filter)")


TemplateIn.echoes = TemplateOut  # a PUT takes back what a GET returned (see WriteModel.echoes)
