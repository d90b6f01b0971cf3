"""Voucher definitions and code pools (admin), and the member's own vouchers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.auth.deps import AdminKey, CurrentUser
from app.errors import responses
from app.kit.db import SessionDep
from app.kit.pagination import PageDep, count_header
from app.vouchers import service as vouchers_service
from app.vouchers.schemas import (
    CodesIn,
    CodesResult,
    MemberVoucherOut,
    VoucherCreate,
    VoucherOut,
    VoucherReplace,
    VoucherUpdate,
)

admin_router = APIRouter(prefix="/v1/admin/vouchers", tags=["admin", "vouchers"])
router = APIRouter(tags=["vouchers"])

VoucherKey = Annotated[str, Path(min_length=1, max_length=64)]


@admin_router.post("", status_code=201, response_model=VoucherOut, responses=responses(401, 403, 409, 422))
async def create_voucher(body: VoucherCreate, session: SessionDep, _: AdminKey) -> VoucherOut:
    """Define a voucher with an uploaded pool of codes or generated codes."""
    voucher = await vouchers_service.create(session, body)
    return await vouchers_service.view(session, voucher)


@admin_router.get("", response_model=list[VoucherOut], responses=responses(401, 403))
async def list_vouchers(session: SessionDep, page: PageDep, _: AdminKey, response: Response) -> list[VoucherOut]:
    """All vouchers with pool health (`pending_count`, `warning: voucher_pool_exhausted`); `limit` (default 50)
    and `offset` slice the array, and the `X-Total-Count` header holds how many there are in all."""
    items, total = await vouchers_service.list_page(session, page.limit, page.offset)
    count_header(response, total)
    return items


@admin_router.get("/{key}", response_model=VoucherOut, responses=responses(401, 403, 404))
async def get_voucher(key: VoucherKey, session: SessionDep, _: AdminKey) -> VoucherOut:
    """One voucher with pool health."""
    return await vouchers_service.view(session, await vouchers_service.get(session, key))


@admin_router.put("/{key}", response_model=VoucherOut, responses=responses(401, 403, 404, 409, 422))
async def replace_voucher(key: VoucherKey, body: VoucherReplace, session: SessionDep, _: AdminKey) -> VoucherOut:
    """Replace a voucher's definition (codes are added with POST …/codes); switching to generated codes while
    uploaded codes are unused is a 409 `voucher_has_codes`."""
    return await vouchers_service.view(session, await vouchers_service.update(session, key, body))


@admin_router.patch("/{key}", response_model=VoucherOut, responses=responses(401, 403, 404, 409, 422))
async def update_voucher(key: VoucherKey, body: VoucherUpdate, session: SessionDep, _: AdminKey) -> VoucherOut:
    """Change some fields of a voucher; switching to generated codes while uploaded codes are unused is a 409
    `voucher_has_codes`."""
    return await vouchers_service.view(session, await vouchers_service.update(session, key, body))


@admin_router.delete("/{key}", status_code=204, responses=responses(401, 403, 404, 409))
async def delete_voucher(key: VoucherKey, session: SessionDep, _: AdminKey) -> Response:
    """Delete a voucher nobody holds and no challenge rewards."""
    await vouchers_service.delete(session, key)
    return Response(status_code=204)


@admin_router.post("/{key}/codes", response_model=CodesResult, responses=responses(401, 403, 404, 409, 422))
async def add_codes(key: VoucherKey, body: CodesIn, session: SessionDep, _: AdminKey) -> CodesResult:
    """Add codes to the pool; pending member vouchers are fulfilled from them at once."""
    return await vouchers_service.add_codes(session, key, body.codes)


@router.get("/v1/me/vouchers", response_model=list[MemberVoucherOut], responses=responses(401, 403))
async def my_vouchers(
    session: SessionDep, user: CurrentUser, page: PageDep, response: Response
) -> list[MemberVoucherOut]:
    """The caller's vouchers, newest first (`pending` ones get their code as soon as one is available); the
    `X-Total-Count` header holds how many there are in all."""
    items, total = await vouchers_service.for_member(session, user, page.limit, page.offset)
    count_header(response, total)
    return items
