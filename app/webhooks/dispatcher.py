"""Webhook dispatcher: claim due deliveries (SKIP LOCKED), POST them signed outside any transaction, record
each attempt, back off exponentially — 2 s, 4 s, 8 s … doubling up to every 6 h — until the retry window
(LAUREL_WEBHOOK_RETRY_HOURS, 24 h) closes, then dead-letter. The first retries come within seconds, so a
receiver that hiccups once or twice gets its delivery almost at once; about 17 attempts fit in 24 h.

At-least-once and ordered per member: a member's delivery is not sent while an earlier one for the same
endpoint is still pending or in flight (a dead-lettered one no longer blocks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import exists, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.config import Settings
from app.kit.clock import shown, utcnow
from app.kit.dialect import skip_locked
from app.kit.handlers import is_retryable
from app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks import addresses, signing
from app.webhooks import repository as repo

log = logging.getLogger("laurel.webhooks")
RECORD_ATTEMPTS = 3

BACKOFF_FIRST_SECONDS = 2
BACKOFF_MAX_SECONDS = 6 * 3600
IN_FLIGHT = ("pending", "delivering")
USER_AGENT = "Laurel-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    pk: int
    delivery_id: str
    url: str
    secret: str
    event: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Result:
    claimed: Claimed
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def body_of(delivery_id: str, event: str, created_at: datetime, payload: dict[str, Any]) -> bytes:
    """The JSON body receivers get: the delivery id (dedupe on it), the event kind and its data."""
    doc = {"id": delivery_id, "event": event, "created_at": shown(created_at), "data": payload}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def backoff(attempts: int) -> timedelta:
    """Delay after the n-th failed attempt (1-based): 2 s, 4 s, 8 s, … doubling, at most 6 h."""
    n = min(max(attempts, 1), 32)  # 2 s · 2^31 is far past the cap; keeps the power small
    return timedelta(seconds=min(BACKOFF_FIRST_SECONDS * 2 ** (n - 1), BACKOFF_MAX_SECONDS))


async def _claim(session: AsyncSession, settings: Settings, limit: int, now: datetime) -> list[Claimed]:
    lease = timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
    # A dispatcher that died mid-send left its claim behind: at-least-once means send it again.
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == "delivering", WebhookDelivery.lease_until < now)
        .values(status="pending", lease_until=None)
        .execution_options(synchronize_session=False)
    )
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.user_id == WebhookDelivery.user_id,
        earlier.id < WebhookDelivery.id,
        earlier.status.in_(IN_FLIGHT),
    )
    stmt = (
        select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
            ~blocked,
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, **skip_locked(session))
    )
    claimed = []
    for d, url, secret in (await session.execute(stmt)).all():
        d.status = "delivering"
        d.lease_until = now + lease
        claimed.append(Claimed(d.id, d.delivery_id, url, secret, d.event, d.payload, d.created_at))
    return claimed


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                extensions: dict[str, str] | None = None) -> httpx.Response:
    """POST and take the answer at its status line: the body is not read (a receiver's answer is its status, and
    one whose body never ends must not hold the batch)."""
    async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
        return response


async def _send(client: httpx.AsyncClient, c: Claimed, public_only: bool, budget: float) -> Result:
    """One attempt, given `budget` seconds in all: the client's timeouts bound each connect and read, not their
    sum, and a receiver trickling its headers a byte at a time would otherwise hold the batch for as long as it
    liked (and past the claim's lease, so the others would be sent twice)."""
    started = time.monotonic()
    try:
        target = await addresses.delivery_target(c.url) if public_only else addresses.Target(None, c.url)
    except Exception as exc:  # one endpoint's surprise must not stop the batch's record (and re-send the others)
        log.exception("webhook delivery %s: checking its address failed", c.delivery_id)
        target = addresses.Target(f"its address could not be checked ({type(exc).__name__})")
    if target.refusal is not None:  # not sent: a failed attempt like any other, retried until the endpoint is fixed
        return Result(c, None, f"not sent: {target.refusal}"[:500], int((time.monotonic() - started) * 1000))
    body = body_of(c.delivery_id, c.event, c.created_at, c.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Laurel-Delivery": c.delivery_id,
        "X-Laurel-Event": c.event,
        signing.HEADER: signing.sign(c.secret, body),
    }
    try:
        async with asyncio.timeout(budget):
            if target.proxy is not None:
                async with httpx.AsyncClient(proxy=target.proxy, trust_env=False, timeout=client.timeout,
                                             follow_redirects=False) as proxied:
                    response = await _post(proxied, target.url, body, headers)
            else:
                candidates = (target.url, *target.fallbacks)
                for i, url in enumerate(candidates):
                    try:
                        response = await _post(client, url, body, {**headers, **target.headers}, target.extensions)
                        break
                    except httpx.ConnectError:
                        if i == len(candidates) - 1:
                            raise  # no address of the host could be reached
        status, error = response.status_code, None if response.is_success else f"HTTP {response.status_code}"
    except TimeoutError:
        status, error = None, f"Timeout: no complete answer within {budget:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"[:500]
    except Exception as exc:  # one delivery's surprise must not stop the others' attempts from being recorded
        log.exception("webhook delivery %s: unexpected error while sending", c.delivery_id)
        status, error = None, f"{type(exc).__name__}: {exc}"[:500]
    return Result(c, status, error, int((time.monotonic() - started) * 1000))


async def _record(session: AsyncSession, settings: Settings, results: list[Result], now: datetime) -> None:
    window = timedelta(hours=settings.webhook_retry_hours)
    for r in results:
        d = await session.get(WebhookDelivery, r.claimed.pk, with_for_update=True)
        if d is None:
            # Its endpoint was deleted while it was being sent: nothing left to log it against. (Logging it anyway
            # failed the whole batch's record, and the other deliveries were sent again when their lease ran out.)
            continue
        session.add(WebhookAttempt(
            delivery_id=r.claimed.pk, attempted_at=now, status_code=r.status_code, error=r.error,
            duration_ms=r.duration_ms,
        ))
        if d.status != "delivering":
            continue  # the lease expired and someone else owns it now
        d.attempts += 1
        d.lease_until = None
        d.last_status_code = r.status_code
        d.last_error = r.error
        if r.ok:
            d.status = "delivered"
            d.delivered_at = now
            continue
        # The backoff restarts with the retry window: a redelivered delivery is retried after 2 s, 4 s … again, not
        # every 6 h because of the attempts it used up before it was dead-lettered.
        await session.flush()
        tries = await repo.attempts_since(session, d.id, d.retry_until - window)
        next_at = now + backoff(tries)
        if next_at > d.retry_until:
            d.status = "dead"
            log.warning("webhook delivery %s dead after %s attempts: %s", d.delivery_id, d.attempts, r.error)
        else:
            d.status = "pending"
            d.next_attempt_at = next_at


async def dispatch_webhooks_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient | None = None,
    *,
    limit: int = 100,
    now: datetime | None = None,
) -> int:
    """Claim, send and record one batch; returns how many deliveries were attempted."""
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        claimed = await _claim(session, settings, limit, now)
    if not claimed:
        return 0
    own = client is None
    public_only = not settings.webhooks_reach_private
    # Pinned deliveries connect to an address, not a name: a kept-alive connection to one address (its TLS session
    # made for one host name) must not carry another host's delivery that resolved to the same address.
    limits = httpx.Limits(max_keepalive_connections=0) if public_only else httpx.Limits()
    # Checked deliveries go where the check decided (addresses.delivery_target: pinned, or an egress proxy), so
    # this client does not read proxy settings from the environment itself.
    http = client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                                       limits=limits, trust_env=not public_only)
    sending = time.monotonic()
    try:
        budget = 2 * settings.webhook_timeout_seconds  # a connect and an answer (the lease allows for both)
        results = list(await asyncio.gather(*(_send(http, c, public_only, budget) for c in claimed)))
    finally:
        if own:
            await http.aclose()
    # Backoff counts from the answer (or timeout), not from the claim: a receiver that takes the whole timeout
    # to fail must not be retried straight away.
    answered = now + timedelta(seconds=time.monotonic() - sending)
    for attempt in range(RECORD_ATTEMPTS):
        try:
            async with sessionmaker() as session, session.begin():
                await _record(session, settings, results, answered)
            break
        except DBAPIError as exc:
            # A deadlock with an endpoint's delete (its cascade locks deliveries in another order): the record is
            # written again, or the deliveries already sent would be sent again when their lease runs out.
            if not is_retryable(exc) or attempt == RECORD_ATTEMPTS - 1:
                raise
    return len(claimed)
