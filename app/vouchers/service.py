"""Voucher definitions and issuing: a reward owed is recorded first, then given a code when one exists.

Issuing is keyed by its source (e.g. a challenge participation), so it happens once whatever retries or
races occur. An empty pool never loses a reward: the member voucher stays `pending` and is fulfilled
when codes are added (admin upload or the periodic job), oldest first.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.challenges import repository as challenges_repo
from app.errors import Conflict, InvalidInput, NotFound
from app.events.record import MemberRecord
from app.kit import clock
from app.models import MemberVoucher, User, Voucher
from app.outbox import service as outbox
from app.vouchers import repository as vouchers_repo
from app.vouchers.schemas import (
    CodesResult,
    MemberVoucherOut,
    VoucherCreate,
    VoucherOut,
    VoucherReplace,
    VoucherUpdate,
)

log = logging.getLogger("laurel.vouchers")

EXHAUSTED = "voucher_pool_exhausted"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud at tills
FULFIL_BATCH = 500


def generate_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))


@dataclass(frozen=True)
class Issued:
    member_voucher_id: int
    status: str  # "issued" or "pending"
    code: str | None
    expires_at: datetime | None
    warning: str | None

    def to_json(self, voucher_key: str) -> dict[str, object]:
        return {"key": voucher_key, "member_voucher_id": self.member_voucher_id, "status": self.status,
                "code": self.code, "expires_at": clock.shown(self.expires_at) if self.expires_at else None,
                "warning": self.warning}


# --------------------------------------------------------------------------- admin


async def get(session: AsyncSession, key: str, *, lock: bool = False) -> Voucher:
    voucher = await vouchers_repo.by_key(session, key, lock=lock)
    if voucher is None:
        raise NotFound(f"Voucher '{key}' not found", code="voucher_not_found")
    return voucher


async def view(session: AsyncSession, voucher: Voucher) -> VoucherOut:
    counts = await vouchers_repo.status_counts(session, voucher.id)
    total = await vouchers_repo.code_count(session, voucher.id)
    available = None if voucher.generated else await vouchers_repo.code_count(session, voucher.id, available_only=True)
    pending = counts.get("pending", 0)
    return VoucherOut(
        key=voucher.key, name=voucher.name, description=voucher.description, face_value=float(voucher.face_value),
        validity_days=voucher.validity_days, generated=voucher.generated, codes_total=total,
        codes_available=available, issued_count=counts.get("issued", 0), pending_count=pending,
        warning=EXHAUSTED if pending or available == 0 else None,
        created_at=voucher.created_at, updated_at=voucher.updated_at,
    )


async def create(session: AsyncSession, body: VoucherCreate) -> Voucher:
    if await vouchers_repo.by_key(session, body.key) is not None:
        raise Conflict(f"Voucher '{body.key}' already exists", code="voucher_exists")
    voucher = Voucher(key=body.key, name=body.name, description=body.description, face_value=body.face_value,
                      validity_days=body.validity_days, generated=body.generated)
    session.add(voucher)
    await session.flush()
    if body.codes:
        await vouchers_repo.add_codes(session, voucher.id, body.codes)
    return voucher


async def update(session: AsyncSession, key: str, body: VoucherReplace | VoucherUpdate) -> Voucher:
    voucher = await get(session, key)
    fields = body.model_dump(exclude_unset=isinstance(body, VoucherUpdate))
    given_key = fields.pop("key", None)
    if given_key is not None and given_key != key:
        raise InvalidInput("The key in the body does not match the path", code="key_mismatch")
    if fields.get("generated") and not voucher.generated:
        # A pool or generated codes, not both (as on create): switched with uploaded codes unused, members would be
        # handed made-up codes and the uploaded ones never. Locked as an upload does, so none lands meanwhile.
        await vouchers_repo.lock_pool(session, voucher.id)
        unused = await vouchers_repo.code_count(session, voucher.id, available_only=True)
        if unused:
            raise Conflict("This voucher still has unused uploaded codes; it cannot switch to generated codes",
                           code="voucher_has_codes", details={"codes_available": unused})
    for name, value in fields.items():  # a null is refused by the schemas, except validity_days (no expiry)
        setattr(voucher, name, value)
    voucher.updated_at = clock.utcnow()
    await session.flush()
    if voucher.generated:
        await fulfil_pending(session, voucher)
    return voucher


async def list_page(session: AsyncSession, limit: int, offset: int) -> tuple[list[VoucherOut], int]:
    """A slice of the vouchers and how many there are in all."""
    items, total = await vouchers_repo.page(session, limit, offset)
    return [await view(session, v) for v in items], total


async def delete(session: AsyncSession, key: str) -> None:
    # Locked first: a challenge being saved with it as its reward, or a member's voucher being issued, is waited
    # for and then seen below; read without the lock, both checks could be stale by the time the row is deleted.
    voucher = await get(session, key, lock=True)
    referenced_by = await challenges_repo.keys_rewarding_voucher(session, key)
    if referenced_by:
        raise Conflict("Challenges still reward this voucher", code="voucher_in_use",
                       details={"challenges": referenced_by})
    if await vouchers_repo.member_count(session, voucher.id):
        raise Conflict("Members hold this voucher; it cannot be deleted", code="voucher_in_use")
    await session.delete(voucher)
    await session.flush()


async def add_codes(session: AsyncSession, key: str, codes: list[str]) -> CodesResult:
    """Add codes to the pool, then hand them to members whose vouchers are pending."""
    # Locked (FOR UPDATE) before `generated` is read: completions owing this voucher in flight are waited for (and
    # they for this upload, see vouchers_repo.hold_pool), and so is a switch to generated codes, which would leave
    # codes added meanwhile in a pool nothing hands out.
    voucher = await get(session, key, lock=True)
    if voucher.generated:
        raise Conflict("This voucher generates its codes; it has no pool", code="voucher_generated")
    added = await vouchers_repo.add_codes(session, voucher.id, codes)
    fulfilled = await fulfil_pending(session, voucher)
    out = await view(session, voucher)
    return CodesResult(added=added, duplicates=len(codes) - added, fulfilled=fulfilled,
                       codes_available=out.codes_available, pending_count=out.pending_count, warning=out.warning)


# --------------------------------------------------------------------------- issuing


async def _code_for(session: AsyncSession, voucher: Voucher, at: datetime) -> str | None:
    if voucher.generated:
        return generate_code()
    return await vouchers_repo.take_code(session, voucher.id, at)


def _expiry(voucher: Voucher, issued_at: datetime) -> datetime | None:
    return issued_at + timedelta(days=voucher.validity_days) if voucher.validity_days else None


async def _announce(session: AsyncSession, voucher: Voucher, user: User | MemberRecord, mv_id: int, code: str,
                    expires_at: datetime | None, source_type: str, source_id: str) -> None:
    await outbox.emit(session, "voucher.issued", user.id, {
        "user_id": user.external_id, "voucher": voucher.key, "name": voucher.name,
        "face_value": str(voucher.face_value), "code": code, "member_voucher_id": mv_id,
        "expires_at": clock.shown(expires_at) if expires_at else None,
        "source_type": source_type, "source_id": source_id,
    })


async def issue(
    session: AsyncSession, voucher: Voucher, user: User | MemberRecord, *, source_type: str, source_id: str
) -> Issued | None:
    """Owe the member one voucher for this source and give it a code if one is free; None if already owed."""
    if not voucher.generated:
        await vouchers_repo.hold_pool(session, voucher.id)  # an upload of codes in flight commits first, or waits
    now = clock.utcnow()
    mv_id = await vouchers_repo.insert_member_voucher(
        session, voucher_id=voucher.id, user_id=user.id, source_type=source_type, source_id=source_id, at=now
    )
    if mv_id is None:
        return None
    code = await _code_for(session, voucher, now)
    if code is None:
        log.warning("voucher pool exhausted; reward held as pending",
                    extra={"fields": {"voucher": voucher.key, "member_voucher_id": mv_id}})
        return Issued(mv_id, "pending", None, None, EXHAUSTED)
    expires_at = _expiry(voucher, now)
    await vouchers_repo.mark_issued(session, mv_id, code, now, expires_at, voucher)
    await _announce(session, voucher, user, mv_id, code, expires_at, source_type, source_id)
    return Issued(mv_id, "issued", code, expires_at, None)


async def fulfil_pending(session: AsyncSession, voucher: Voucher) -> int:
    """Give codes to pending member vouchers, oldest first, until codes or pending ones run out."""
    fulfilled = 0
    while True:
        claimed = await vouchers_repo.claim_pending(session, voucher.id, FULFIL_BATCH)
        if not claimed:
            return fulfilled
        for mv, user in claimed:
            now = clock.utcnow()
            code = await _code_for(session, voucher, now)
            if code is None:
                return fulfilled
            expires_at = _expiry(voucher, now)
            if await vouchers_repo.mark_issued(session, mv.id, code, now, expires_at, voucher):
                await _announce(session, voucher, user, mv.id, code, expires_at, mv.source_type, mv.source_id)
                fulfilled += 1
        if len(claimed) < FULFIL_BATCH:
            return fulfilled


async def fulfil_all(session: AsyncSession) -> int:
    total = 0
    for voucher in await vouchers_repo.with_pending(session):
        # Not waiting: a transaction owing this voucher may hold other vouchers too (a batch), and what is
        # skipped now is fulfilled on the next run or by the next upload.
        if await vouchers_repo.lock_pool(session, voucher.id, wait=False):
            total += await fulfil_pending(session, voucher)
    return total


# --------------------------------------------------------------------------- members


def member_view(mv: MemberVoucher, voucher: Voucher, now: datetime) -> MemberVoucherOut:
    status = mv.status
    if status == "issued" and mv.expires_at is not None and mv.expires_at <= now:
        status = "expired"
    issued = mv.name is not None  # the terms it was issued with; a pending one shows the definition's
    return MemberVoucherOut(
        id=mv.id, voucher=voucher.key, name=mv.name if issued else voucher.name,
        description=(mv.description or "") if issued else voucher.description,
        face_value=float(mv.face_value if issued and mv.face_value is not None else voucher.face_value),
        code=mv.code, status=status,
        issued_at=mv.issued_at, expires_at=mv.expires_at, created_at=mv.created_at,
        source_type=mv.source_type, source_id=mv.source_id,
    )


async def for_member(session: AsyncSession, user: User, limit: int, offset: int) -> tuple[list[MemberVoucherOut], int]:
    rows, total = await vouchers_repo.for_member(session, user.id, limit, offset)
    now = clock.utcnow()
    return [member_view(mv, v, now) for mv, v in rows], total
