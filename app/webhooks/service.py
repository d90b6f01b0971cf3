"""Webhook endpoints (admin CRUD), the delivery log and redelivery."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, InvalidInput, NotFound
from app.kit.clock import utcnow
from app.models import WebhookEndpoint
from app.webhooks import addresses
from app.webhooks import repository as repo
from app.webhooks.schemas import (
    AttemptOut,
    DeliveriesPage,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPatch,
    WebhookReplace,
)


def secret_hint(secret: str) -> str:
    """The last characters of a secret, to tell endpoints apart: at most four, and never more than a quarter of
    it, so a short secret chosen by the admin is not given away."""
    n = min(4, len(secret) // 4)
    return secret[-n:] if n else ""


MASK = "****"


def shown_url(url: str) -> str:
    """The address as responses show it: a password in it (basic auth for the receiver) is masked."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return url
    if not parsed.password:
        return url
    return str(parsed.copy_with(userinfo=parsed.userinfo.split(b":", 1)[0] + b":" + MASK.encode()))


def _given_url(ep: WebhookEndpoint | None, url: str) -> str:
    """The address to store: the endpoint's own when `url` is it as responses show it (an admin app sending back
    what it fetched keeps the password it never saw)."""
    return ep.url if ep is not None and url != ep.url and url == shown_url(ep.url) else url


def _out(ep: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=ep.id, url=shown_url(ep.url), events=list(ep.events), description=ep.description, enabled=ep.enabled,
        secret_hint=secret_hint(ep.secret), created_at=ep.created_at, updated_at=ep.updated_at,
    )


async def _get(session: AsyncSession, endpoint_id: int) -> WebhookEndpoint:
    ep = await repo.endpoint(session, endpoint_id)
    if ep is None:
        raise NotFound("Webhook endpoint not found", code="webhook_not_found")
    return ep


def _check_host(settings: Settings, url: str) -> None:
    refusal = None if settings.webhooks_reach_private else addresses.saved_url_refusal(url)
    if refusal is not None:
        raise InvalidInput(f"url: {refusal}; webhooks are sent to public addresses only", code="url_not_allowed",
                           details=[{"field": "body.url", "message": refusal}])


async def create(session: AsyncSession, settings: Settings, body: WebhookCreate) -> WebhookCreated:
    _check_host(settings, body.url)
    ep = WebhookEndpoint(
        url=body.url, events=body.events, secret=body.secret or f"whsec_{secrets.token_urlsafe(32)}",
        description=body.description, enabled=body.enabled,
    )
    session.add(ep)
    await session.flush()
    await session.refresh(ep)
    return WebhookCreated(**_out(ep).model_dump(), secret=ep.secret)


async def list_all(session: AsyncSession) -> list[WebhookOut]:
    return [_out(ep) for ep in await repo.endpoints(session)]


async def get(session: AsyncSession, endpoint_id: int) -> WebhookOut:
    return _out(await _get(session, endpoint_id))


async def patch(session: AsyncSession, settings: Settings, endpoint_id: int, body: WebhookPatch) -> WebhookOut:
    ep = await _get(session, endpoint_id)
    if body.url is not None:
        url = _given_url(ep, body.url)
        _check_host(settings, url)
        body = body.model_copy(update={"url": url})
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(ep, name, value)
    await session.flush()
    await session.refresh(ep)
    return _out(ep)


async def replace(session: AsyncSession, settings: Settings, endpoint_id: int, body: WebhookReplace) -> WebhookOut:
    ep = await _get(session, endpoint_id)
    body = body.model_copy(update={"url": _given_url(ep, body.url)})
    _check_host(settings, body.url)
    ep.url, ep.events, ep.description, ep.enabled = body.url, body.events, body.description, body.enabled
    if body.secret is not None:
        ep.secret = body.secret
    await session.flush()
    await session.refresh(ep)
    return _out(ep)


async def delete(session: AsyncSession, endpoint_id: int) -> None:
    await session.delete(await _get(session, endpoint_id))
    await session.flush()


async def deliveries(
    session: AsyncSession, endpoint_id: int, status: str | None, limit: int, offset: int
) -> DeliveriesPage:
    await _get(session, endpoint_id)
    rows, total = await repo.deliveries(session, endpoint_id, status, limit, offset)
    items = []
    for d in rows:
        out = DeliveryOut.model_validate(d)
        out.history = [AttemptOut.model_validate(a) for a in await repo.attempts(session, d.id)]
        items.append(out)
    return DeliveriesPage(items=items, total=total, limit=limit, offset=offset)


async def redeliver(session: AsyncSession, settings: Settings, endpoint_id: int, delivery_id: str) -> DeliveryOut:
    """Queue a delivery again now (same delivery id, so receivers can dedupe) with a fresh retry window."""
    ep = await _get(session, endpoint_id)
    if not ep.enabled:
        # Nothing is sent to a disabled endpoint: "pending" would be a promise the dispatcher does not keep.
        raise Conflict("This endpoint is disabled; enable it to redeliver", code="webhook_disabled")
    d = await repo.delivery(session, endpoint_id, delivery_id)
    if d is None:
        raise NotFound("Delivery not found", code="delivery_not_found")
    now = utcnow()
    if d.status != "delivering":
        d.status = "pending"
        d.next_attempt_at = now
        d.retry_until = now + timedelta(hours=settings.webhook_retry_hours)
        await session.flush()
    out = DeliveryOut.model_validate(d)
    out.history = [AttemptOut.model_validate(a) for a in await repo.attempts(session, d.id)]
    return out
