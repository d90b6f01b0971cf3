"""Outbox fan-out: each unprocessed outbox row becomes inbox notifications, WeChat deliveries and webhook
deliveries in one transaction, then is marked processed (so a crash re-runs it, and unique keys make the
re-run create nothing twice)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.kit.clock import utcnow
from app.kit.dialect import insert_ignore, skip_locked
from app.models import Badge, Notification, NotificationTemplate, OutboxMessage, User, WeChatDelivery
from app.notifications import fields as wechat_fields
from app.notifications import repository as repo
from app.notifications.kinds import FROM_OUTBOX, TITLE_PARAM, build_params
from app.webhooks import repository as webhooks_repo

log = logging.getLogger("laurel.notifications")

BATCH = 500
# The read path looks at this many of the newest unprocessed outbox rows (all members): a few ms at most, and
# more than the worker, polling every second, leaves behind unless it is down.
READ_PATH_WINDOW = 20_000


def template_locale(template: NotificationTemplate) -> str:
    return "zh-CN" if template.lang.lower().startswith("zh") else "en"


def wechat_data(template: NotificationTemplate, kind: str, params: dict[str, Any]) -> dict[str, str]:
    """The template's values for these params, in the template's language; raises FieldInvalid."""
    localized = dict(params)
    names = params.get("names")
    if isinstance(names, dict) and names.get(template_locale(template)):
        localized[TITLE_PARAM[kind]] = names[template_locale(template)]
    return wechat_fields.render(template.fields, localized)


def delivery_row(
    template: NotificationTemplate, kind: str, params: dict[str, Any], notification_id: int, user_id: int,
    now: datetime,
) -> dict[str, Any]:
    """A WeChat delivery, validated before it is queued: values WeChat would refuse are dropped here."""
    row: dict[str, Any] = {
        "notification_id": notification_id, "user_id": user_id, "kind": kind, "template_id": template.template_id,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now, "bundle_size": 1,
    }
    try:
        row["data"] = wechat_data(template, kind, params)
    except wechat_fields.FieldInvalid as exc:
        log.error("WeChat template for %s is misconfigured: %s", kind, exc)
        row.update(data={}, status="dropped", last_errmsg=f"invalid template value: {exc}"[:500])
    return row


async def _badge_names(session: AsyncSession, rows: Sequence[OutboxMessage]) -> dict[str, dict[str, str]]:
    keys = {str(r.payload.get("badge")) for r in rows if r.kind == "badge.awarded" and r.payload.get("badge")}
    if not keys:
        return {}
    out: dict[str, dict[str, str]] = {}
    for key, name, translations in (
        await session.execute(select(Badge.key, Badge.name, Badge.translations).where(Badge.key.in_(keys)))
    ).all():
        names = {"zh-CN": name, "en": name}
        for locale, tr in (translations or {}).items():
            if isinstance(tr, dict) and tr.get("name"):
                names[locale] = tr["name"]
        out[key] = names
    return out


async def notify_members(
    session: AsyncSession,
    items: list[tuple[int, str, dict[str, Any], str]],
    templates: dict[str, NotificationTemplate],
    now: datetime,
) -> int:
    """Insert notifications (user_id, kind, params, source_key) once each, plus their WeChat deliveries.

    Shared by the fan-out and the scheduler checks; returns how many notifications were new.
    """
    if not items:
        return 0
    stmt = (
        insert_ignore(session, Notification.__table__, ["source_key"])  # type: ignore[arg-type]
        .values([
            {"user_id": u, "kind": k, "params": p, "source_key": s, "created_at": now} for u, k, p, s in items
        ])
        .returning(Notification.id, Notification.source_key)
    )
    created = {key: nid for nid, key in (await session.execute(stmt)).all()}
    if not created:
        return 0
    wanted = [(u, k, p, created[s]) for u, k, p, s in items if s in created and k in templates]
    if wanted:
        openids = dict(
            (await session.execute(
                select(User.id, User.openid).where(User.id.in_({u for u, _, _, _ in wanted}), User.openid.is_not(None))
            )).all()
        )
        deliveries = [
            delivery_row(templates[k], k, p, nid, u, now) for u, k, p, nid in wanted if openids.get(u)
        ]
        if deliveries:
            await session.execute(insert_ignore(
                session, WeChatDelivery.__table__, ["notification_id"]  # type: ignore[arg-type]
            ).values(deliveries))
    return len(created)


async def fanout_once(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, limit: int = BATCH,
    now: datetime | None = None,
) -> int:
    """Process one batch of outbox rows (claimed with SKIP LOCKED); returns how many were processed."""
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        rows = (
            await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.processed_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(limit)
                .with_for_update(**skip_locked(session))
            )
        ).scalars().all()
        if not rows:
            return 0
        templates = {t.kind: t for t in await repo.templates(session, enabled_only=True)}
        items: list[tuple[int, str, dict[str, Any], str]] = []
        for row, kind, params in await _notifications_of(session, settings, rows):
            if row.user_id is not None:  # a row for no one member (challenge.published) is for webhooks only
                items.append((row.user_id, kind, params, f"outbox:{row.id}"))
        await notify_members(session, items, templates, now)
        await webhooks_repo.enqueue(session, rows, now, timedelta(hours=settings.webhook_retry_hours))
        for row in rows:
            row.processed_at = now
        return len(rows)


async def _notifications_of(
    session: AsyncSession, settings: Settings, rows: Sequence[OutboxMessage]
) -> list[tuple[OutboxMessage, str, dict[str, Any]]]:
    """(row, notification kind, params) for the outbox rows that become a notification."""
    names = await _badge_names(session, rows)
    out = []
    for row in rows:
        kind = FROM_OUTBOX.get(row.kind)
        if kind is None:
            continue
        params = build_params(kind, row.payload, row.created_at, settings.tz)
        if row.kind == "badge.awarded" and str(row.payload.get("badge")) in names:
            params["names"] = names[str(row.payload.get("badge"))]
        out.append((row, kind, params))
    return out


async def fanout_for_member(
    session: AsyncSession, settings: Settings, user_id: int, *, now: datetime | None = None
) -> int:
    """Notify one member now of their outbox rows the worker has not fanned out yet (the inbox read path).

    Only the member's notifications (inbox entries and their WeChat deliveries) are made here, in the caller's
    transaction; the row itself is left to the worker, which still enqueues its webhooks in outbox order and
    marks it processed. Exactly once either way: a notification's `source_key` ("outbox:<id>") is unique, so
    whichever of the two inserts it second inserts nothing — and WeChat deliveries are only made for
    notifications actually inserted. Bounded: only the newest READ_PATH_WINDOW unprocessed rows are looked at
    (with a backlog the worker catches up on the rest)."""
    newest = (
        select(OutboxMessage.id, OutboxMessage.user_id)
        .where(OutboxMessage.processed_at.is_(None))
        .order_by(OutboxMessage.id.desc())
        .limit(READ_PATH_WINDOW)
        .subquery()
    )
    ids = (await session.execute(select(newest.c.id).where(newest.c.user_id == user_id))).scalars().all()
    if not ids:
        return 0
    rows = (await session.execute(
        select(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.kind.in_(list(FROM_OUTBOX)))
        .order_by(OutboxMessage.id)
    )).scalars().all()
    if not rows:
        return 0
    now = now or utcnow()
    templates = {t.kind: t for t in await repo.templates(session, enabled_only=True)}
    items = [(user_id, kind, params, f"outbox:{row.id}") for row, kind, params in
             await _notifications_of(session, settings, rows)]
    return await notify_members(session, items, templates, now)


async def fanout_all(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Drain the outbox (tests and the benchmark)."""
    total = 0
    while n := await fanout_once(sessionmaker, settings):
        total += n
    return total
