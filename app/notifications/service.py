"""Inbox, consent ledger, WeChat template mapping and the admin view of notifications."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, NotFound
from app.kit.clock import utcnow
from app.models import Notification, NotificationTemplate, User
from app.notifications import fanout
from app.notifications import repository as repo
from app.notifications.kinds import inbox_text
from app.notifications.schemas import (
    AdminNotificationOut,
    AdminNotificationsPage,
    InboxPage,
    NotificationOut,
    ReadIn,
    ReadOut,
    SubscriptionOut,
    SubscriptionsIn,
    SubscriptionsOut,
    TemplateIn,
    TemplateOut,
    WeChatDeliveryOut,
)


def _out(n: Notification, locale: str) -> NotificationOut:
    title, body = inbox_text(n.kind, n.params, locale)
    params = {k: v for k, v in n.params.items() if k != "names"}
    return NotificationOut(
        id=n.id, kind=n.kind, title=title, body=body, params=params, created_at=n.created_at,
        read_at=n.read_at, read=n.read_at is not None,
    )


async def inbox(
    session: AsyncSession, settings: Settings, user: User, limit: int, offset: int, locale: str
) -> InboxPage:
    """The member's notifications, newest first, with the unread count — including what the event they just
    caused produced, even before the background fan-out ran (see fanout.fanout_for_member)."""
    await fanout.fanout_for_member(session, settings, user.id)
    rows = await repo.inbox(session, user.id, limit, offset)
    total, unread = await repo.inbox_counts(session, user.id)
    return InboxPage(
        items=[_out(n, locale) for n in rows], total=total, unread_count=unread, limit=limit, offset=offset
    )


async def mark_read(session: AsyncSession, settings: Settings, user: User, body: ReadIn) -> ReadOut:
    if body.all:  # "all" includes what the member may have been shown a moment ago
        await fanout.fanout_for_member(session, settings, user.id)
    updated = await repo.mark_read(session, user.id, None if body.all else body.ids, utcnow())
    _, unread = await repo.inbox_counts(session, user.id)
    return ReadOut(updated=updated, unread_count=unread)


async def subscriptions(session: AsyncSession, user: User, *, duplicate: bool = False) -> SubscriptionsOut:
    """Credits per template: every mapped template (so the front end knows what to ask for) and any other."""
    kinds_by_template: dict[str, list[str]] = {}
    for t in await repo.templates(session, enabled_only=True):
        kinds_by_template.setdefault(t.template_id, []).append(t.kind)
    ledger = {c.template_id: c for c in await repo.credits(session, user.id)}
    out = []
    for template_id in sorted(set(kinds_by_template) | set(ledger)):
        credit = ledger.get(template_id)
        n = credit.credits if credit else 0
        out.append(SubscriptionOut(
            template_id=template_id, kinds=kinds_by_template.get(template_id, []), credits=n,
            # A template WeChat has banned cannot be subscribed to: asking again would only show the member nothing.
            last_result=credit.last_result if credit else None,
            ask=n == 0 and (credit is None or credit.last_result != "ban"),
        ))
    return SubscriptionsOut(templates=out, duplicate=duplicate)


async def report_subscriptions(session: AsyncSession, user: User, body: SubscriptionsIn) -> SubscriptionsOut:
    """Apply what the member answered to wx.requestSubscribeMessage, once per request_id."""
    now = utcnow()
    applied = await repo.record_report(session, user.id, body.request_id, dict(body.results), now)
    if applied:
        for template_id, result in sorted(body.results.items()):
            await repo.add_result(session, user.id, template_id, result, now)
    elif (stored := await repo.report_results(session, user.id, body.request_id)) != dict(body.results):
        # A retry sends the same answers; other answers under a used request_id are a client bug that would
        # otherwise lose them silently.
        raise Conflict("This request_id was already reported with other results", code="request_id_reused",
                       details={"request_id": body.request_id, "results": stored})
    return await subscriptions(session, user, duplicate=not applied)


async def put_template(session: AsyncSession, kind: str, body: TemplateIn) -> TemplateOut:
    row = await repo.template(session, kind)
    if row is None:
        row = NotificationTemplate(kind=kind)
        session.add(row)
    row.template_id = body.template_id
    row.page = body.page
    row.fields = dict(body.fields)
    row.miniprogram_state = body.miniprogram_state
    row.lang = body.lang
    row.enabled = body.enabled
    await session.flush()
    await session.refresh(row)
    return TemplateOut.of(row)


async def get_template(session: AsyncSession, kind: str) -> TemplateOut:
    row = await repo.template(session, kind)
    if row is None:
        raise NotFound(f"No WeChat template is mapped for {kind}", code="template_not_found")
    return TemplateOut.of(row)


async def list_templates(session: AsyncSession) -> list[TemplateOut]:
    return [TemplateOut.of(t) for t in await repo.templates(session)]


async def delete_template(session: AsyncSession, kind: str) -> None:
    row = await repo.template(session, kind)
    if row is None:
        raise NotFound(f"No WeChat template is mapped for {kind}", code="template_not_found")
    await session.delete(row)
    await session.flush()


async def admin_list(
    session: AsyncSession,
    *,
    member_id: int | None,
    external_id: str | None,
    kind: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> AdminNotificationsPage:
    rows, total, counts = await repo.admin_list(
        session, member_id=member_id, external_id=external_id, kind=kind, status=status, limit=limit, offset=offset
    )
    items = [
        AdminNotificationOut(
            id=n.id, user_id=n.user_id, external_id=ext, kind=n.kind, params=n.params, created_at=n.created_at,
            read_at=n.read_at, status=d.status if d else "inbox_only",
            wechat=WeChatDeliveryOut.model_validate(d) if d else None,
        )
        for n, d, ext in rows
    ]
    return AdminNotificationsPage(items=items, total=total, limit=limit, offset=offset, counts=counts)
