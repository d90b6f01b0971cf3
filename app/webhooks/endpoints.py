"""Admin: webhook endpoints, their delivery log and redelivery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.auth.deps import AdminKey
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.deps import SettingsDep
from app.kit.pagination import PageDep
from app.webhooks import service
from app.webhooks.schemas import (
    DeliveriesPage,
    DeliveryOut,
    DeliveryState,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPatch,
    WebhookReplace,
)

admin = APIRouter(prefix="/v1/admin/webhooks", tags=["admin", "webhooks"])

EndpointId = Annotated[int, Path(ge=1)]
DeliveryId = Annotated[str, Path(min_length=1, max_length=40)]


@admin.post("", status_code=201, response_model=WebhookCreated, responses=responses(401, 403, 422))
async def create_webhook(
    body: WebhookCreate, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> WebhookCreated:
    """Register an endpoint; the response shows the signing secret once."""
    return await service.create(session, settings, body)


@admin.get("", response_model=list[WebhookOut], responses=responses(401, 403))
async def list_webhooks(session: SessionDep, _: AdminKey) -> list[WebhookOut]:
    """Every webhook endpoint."""
    return await service.list_all(session)


@admin.get("/{endpoint_id}", response_model=WebhookOut, responses=responses(401, 403, 404))
async def get_webhook(endpoint_id: EndpointId, session: SessionDep, _: AdminKey) -> WebhookOut:
    """One webhook endpoint."""
    return await service.get(session, endpoint_id)


@admin.put("/{endpoint_id}", response_model=WebhookOut, responses=responses(401, 403, 404, 422))
async def replace_webhook(
    endpoint_id: EndpointId, body: WebhookReplace, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> WebhookOut:
    """Replace an endpoint's definition (the secret stays unless a new one is given)."""
    return await service.replace(session, settings, endpoint_id, body)


@admin.patch("/{endpoint_id}", response_model=WebhookOut, responses=responses(401, 403, 404, 422))
async def patch_webhook(
    endpoint_id: EndpointId, body: WebhookPatch, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> WebhookOut:
    """Change an endpoint's URL, events, secret, description or enabled flag."""
    return await service.patch(session, settings, endpoint_id, body)


@admin.delete("/{endpoint_id}", status_code=204, response_class=Response, responses=responses(401, 403, 404))
async def delete_webhook(endpoint_id: EndpointId, session: SessionDep, _: AdminKey) -> Response:
    """Remove an endpoint and its delivery log."""
    await service.delete(session, endpoint_id)
    return Response(status_code=204)


@admin.get("/{endpoint_id}/deliveries", response_model=DeliveriesPage, responses=responses(401, 403, 404, 422))
async def list_deliveries(
    endpoint_id: EndpointId, session: SessionDep, _: AdminKey, page: PageDep,
    status: Annotated[DeliveryState | None, Query()] = None,
) -> DeliveriesPage:
    """The endpoint's delivery log, newest first: status, response code, attempts."""
    return await service.deliveries(session, endpoint_id, status, page.limit, page.offset)


@admin.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver", response_model=DeliveryOut,
    responses=responses(401, 403, 404, 409),
)
async def redeliver(
    endpoint_id: EndpointId, delivery_id: DeliveryId, session: SessionDep, settings: SettingsDep, _: AdminKey
) -> DeliveryOut:
    """Send a delivery again (same delivery id) with a fresh retry window; 409 `webhook_disabled` while its endpoint
    is disabled (nothing is sent to it)."""
    return await service.redeliver(session, settings, endpoint_id, delivery_id)
