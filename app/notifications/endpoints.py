"""The member's inbox and consent ledger; admin WeChat template mapping and the notification log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.auth.deps import AdminKey, CurrentUser
from app.errors import InvalidInput, responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.i18n import LocaleDep
from app.kit.pagination import PageDep
from app.notifications import service
from app.notifications.kinds import Kind
from app.notifications.schemas import (
    AdminNotificationsPage,
    DeliveryStatus,
    InboxPage,
    ReadIn,
    ReadOut,
    SubscriptionsIn,
    SubscriptionsOut,
    TemplateIn,
    TemplateOut,
)

router = APIRouter(tags=["notifications"])
admin = APIRouter(prefix="/v1/admin", tags=["admin"])

KindParam = Annotated[Kind, Path(description="Notification kind")]


@router.get("/v1/me/notifications", response_model=InboxPage, responses=responses(401, 403))
async def my_notifications(
    session: SessionDep, settings: SettingsDep, user: CurrentUser, page: PageDep, locale: LocaleDep
) -> InboxPage:
    """The member's inbox, newest first, with the unread count (texts by Accept-Language)."""
    return await service.inbox(session, settings, user, page.limit, page.offset, locale)


@router.post("/v1/me/notifications/read", response_model=ReadOut, responses=responses(401, 403, 422))
async def read_notifications(body: ReadIn, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> ReadOut:
    """Mark notifications read: `{"ids": [...]}` or `{"all": true}`."""
    return await service.mark_read(session, settings, user, body)


@router.get("/v1/me/subscriptions", response_model=SubscriptionsOut, responses=responses(401, 403))
async def my_subscriptions(session: SessionDep, user: CurrentUser) -> SubscriptionsOut:
    """Send credits per WeChat template; `ask` says when to call wx.requestSubscribeMessage again."""
    return await service.subscriptions(session, user)


@router.post("/v1/me/subscriptions", response_model=SubscriptionsOut, responses=responses(401, 403, 409, 422))
async def report_subscriptions(body: SubscriptionsIn, session: SessionDep, user: CurrentUser) -> SubscriptionsOut:
    """Report wx.requestSubscribeMessage results; each `accept` adds one credit (once per request_id: the same
    request_id again answers `duplicate: true`, or 409 `request_id_reused` if its results differ)."""
    return await service.report_subscriptions(session, user, body)


@admin.get("/notification-templates", response_model=list[TemplateOut], responses=responses(401, 403))
async def list_templates(session: SessionDep, _: AdminKey) -> list[TemplateOut]:
    """Every kind mapped to a WeChat subscription-message template."""
    return await service.list_templates(session)


@admin.get("/notification-templates/{kind}", response_model=TemplateOut, responses=responses(401, 403, 404, 422))
async def get_template(kind: KindParam, session: SessionDep, _: AdminKey) -> TemplateOut:
    """The WeChat template mapped to one kind."""
    return await service.get_template(session, kind)


@admin.put("/notification-templates/{kind}", response_model=TemplateOut, responses=responses(401, 403, 422))
async def put_template(kind: KindParam, body: TemplateIn, session: SessionDep, _: AdminKey) -> TemplateOut:
    """Map a kind to a WeChat template; field keys must be WeChat types (thing1, time2, phrase3…)."""
    return await service.put_template(session, kind, body)


@admin.delete(
    "/notification-templates/{kind}", status_code=204, response_class=Response, responses=responses(401, 403, 404)
)
async def delete_template(kind: KindParam, session: SessionDep, _: AdminKey) -> Response:
    """Stop sending WeChat messages for a kind (the inbox keeps working)."""
    await service.delete_template(session, kind)
    return Response(status_code=204)


@admin.get("/notifications", response_model=AdminNotificationsPage, responses=responses(401, 403, 422))
async def list_notifications(
    session: SessionDep,
    _: AdminKey,
    page: PageDep,
    user_id: Annotated[str | None, Query(max_length=128, description="Member's external id")] = None,
    member_id: Annotated[int | None, Query(description="Member's internal id")] = None,
    kind: Annotated[Kind | None, Query()] = None,
    status: Annotated[DeliveryStatus | None, Query(description="WeChat delivery status")] = None,
    member: Annotated[str | None, Query(max_length=128, description="Same as `user_id`: the member's external id")]
    = None,
) -> AdminNotificationsPage:
    """Notifications with their WeChat delivery, filtered by member, kind and status, plus counts by status."""
    if member is not None and user_id is not None and member != user_id:
        raise InvalidInput("member and user_id name different members; give one",
                           details=[{"field": "query.member", "message": "differs from user_id"}])
    return await service.admin_list(
        session, member_id=member_id, external_id=user_id if user_id is not None else member, kind=kind,
        status=status, limit=page.limit, offset=page.offset,
    )
