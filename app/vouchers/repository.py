"""Voucher, code-pool and member-voucher queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.dialect import insert_ignore, skip_locked
from app.models import MemberVoucher, User, Voucher, VoucherCode

CHUNK = 500


async def by_key(session: AsyncSession, key: str, *, lock: bool = False) -> Voucher | None:
    """`lock`: FOR UPDATE (a delete), which waits for the transactions issuing it or naming it in a challenge (see
    `hold`, `hold_pool`) and holds off those that start meanwhile."""
    stmt = select(Voucher).where(Voucher.key == key)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def hold(session: AsyncSession, key: str) -> bool:
    """Whether the voucher exists, kept so until the transaction ends (FOR KEY SHARE): a challenge naming it as
    its reward is saved before a delete of the voucher looks for such challenges, or after it."""
    stmt = select(Voucher.id).where(Voucher.key == key).with_for_update(read=True, key_share=True)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def hold_pool(session: AsyncSession, voucher_id: int) -> None:
    """A shared lock on the voucher (FOR SHARE) for a transaction about to owe a member one from its pool: issuers
    do not wait for one another, but an upload of codes (lock_pool) waits for them, or they for it, so one always
    sees the other's rows (a pending voucher, or the new codes) instead of both missing them."""
    await session.execute(select(Voucher.id).where(Voucher.id == voucher_id).with_for_update(read=True))


async def lock_pool(session: AsyncSession, voucher_id: int, *, wait: bool = True) -> bool:
    """The voucher locked (FOR UPDATE) by a transaction adding codes or handing them to pending vouchers; see
    hold_pool. With `wait=False`, False at once when another transaction holds it (the periodic job moves on)."""
    stmt = select(Voucher.id).where(Voucher.id == voucher_id)
    stmt = stmt.with_for_update() if wait else stmt.with_for_update(**skip_locked(session))
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def page(session: AsyncSession, limit: int, offset: int) -> tuple[list[Voucher], int]:
    rows = await session.execute(select(Voucher).order_by(Voucher.id).limit(limit).offset(offset))
    total = (await session.execute(select(func.count()).select_from(Voucher))).scalar_one()
    return list(rows.scalars()), total


async def add_codes(session: AsyncSession, voucher_id: int, codes: Sequence[str]) -> int:
    """Insert new codes (known ones are skipped); returns how many this call inserted. Counted from the rows the
    inserts return, not as a difference of two counts, which took in codes other uploads committed meanwhile."""
    unique = list(dict.fromkeys(codes))
    table = VoucherCode.__table__
    added = 0
    for i in range(0, len(unique), CHUNK):
        stmt = (
            insert_ignore(session, table, ["voucher_id", "code"])  # type: ignore[arg-type]
            .values([{"voucher_id": voucher_id, "code": c} for c in unique[i:i + CHUNK]])
            .returning(table.c.id)
        )
        added += len((await session.execute(stmt)).all())
    return added


async def code_count(session: AsyncSession, voucher_id: int, available_only: bool = False) -> int:
    stmt = select(func.count()).where(VoucherCode.voucher_id == voucher_id)
    if available_only:
        stmt = stmt.where(VoucherCode.issued_at.is_(None))
    return (await session.execute(stmt)).scalar_one()


async def take_code(session: AsyncSession, voucher_id: int, at: datetime) -> str | None:
    """Claim one unused code; concurrent claimers skip each other's rows instead of waiting (PostgreSQL)."""
    row = (
        await session.execute(
            select(VoucherCode)
            .where(VoucherCode.voucher_id == voucher_id, VoucherCode.issued_at.is_(None))
            .order_by(VoucherCode.id)
            .limit(1)
            .with_for_update(**skip_locked(session))
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    await session.execute(update(VoucherCode).where(VoucherCode.id == row.id).values(issued_at=at))
    return row.code


async def insert_member_voucher(
    session: AsyncSession, *, voucher_id: int, user_id: int, source_type: str, source_id: str, at: datetime
) -> int | None:
    """A pending member voucher, once per source; None when this source already has one."""
    stmt = (
        insert_ignore(session, MemberVoucher.__table__, ["source_type", "source_id"])  # type: ignore[arg-type]
        .values(voucher_id=voucher_id, user_id=user_id, status="pending", source_type=source_type,
                source_id=source_id, created_at=at)
        .returning(MemberVoucher.__table__.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_issued(
    session: AsyncSession, member_voucher_id: int, code: str, issued_at: datetime, expires_at: datetime | None,
    terms: Voucher,
) -> bool:
    """Hand the code over, keeping the voucher's terms as they are now with the member's voucher."""
    res = await session.execute(
        update(MemberVoucher)
        .where(MemberVoucher.id == member_voucher_id, MemberVoucher.status == "pending")
        .values(status="issued", code=code, issued_at=issued_at, expires_at=expires_at, name=terms.name,
                description=terms.description, face_value=terms.face_value)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


async def claim_pending(session: AsyncSession, voucher_id: int, limit: int) -> list[tuple[MemberVoucher, User]]:
    """Oldest pending member vouchers of a voucher, row-locked so two fulfilments never both take one."""
    ids = (
        await session.execute(
            select(MemberVoucher.id)
            .where(MemberVoucher.voucher_id == voucher_id, MemberVoucher.status == "pending")
            .order_by(MemberVoucher.id)
            .limit(limit)
            .with_for_update(**skip_locked(session))
        )
    ).scalars().all()
    if not ids:
        return []
    rows = await session.execute(
        select(MemberVoucher, User).join(User, User.id == MemberVoucher.user_id)
        .where(MemberVoucher.id.in_(ids)).order_by(MemberVoucher.id)
    )
    return [(r[0], r[1]) for r in rows.all()]


async def status_counts(session: AsyncSession, voucher_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(MemberVoucher.status, func.count()).where(MemberVoucher.voucher_id == voucher_id)
        .group_by(MemberVoucher.status)
    )
    return {r[0]: r[1] for r in rows.all()}


async def with_pending(session: AsyncSession) -> list[Voucher]:
    sub = select(MemberVoucher.voucher_id).where(MemberVoucher.status == "pending").distinct()
    return list((await session.execute(select(Voucher).where(Voucher.id.in_(sub)).order_by(Voucher.id))).scalars())


async def member_count(session: AsyncSession, voucher_id: int) -> int:
    return (await session.execute(select(func.count()).where(MemberVoucher.voucher_id == voucher_id))).scalar_one()


async def for_member(
    session: AsyncSession, user_id: int, limit: int, offset: int
) -> tuple[list[tuple[MemberVoucher, Voucher]], int]:
    rows = await session.execute(
        select(MemberVoucher, Voucher).join(Voucher, Voucher.id == MemberVoucher.voucher_id)
        .where(MemberVoucher.user_id == user_id).order_by(MemberVoucher.id.desc()).limit(limit).offset(offset)
    )
    total = (await session.execute(select(func.count()).where(MemberVoucher.user_id == user_id))).scalar_one()
    return [(r[0], r[1]) for r in rows.all()], total
