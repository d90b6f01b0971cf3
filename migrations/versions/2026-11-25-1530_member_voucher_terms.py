"""member_vouchers.name, description, face_value: the voucher's terms when it was issued, so that editing the
definition does not change vouchers members already hold. Vouchers issued before take the definition's terms
as they are now (the best record there is); pending ones stay NULL until issued.

Revision ID: 0013_member_voucher_terms
Revises: 0012_member_fk_indexes
Create Date: 2026-11-25 15:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_member_voucher_terms'
down_revision: str | None = '0012_member_fk_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('member_vouchers', sa.Column('name', sa.String(length=100), nullable=True))
    op.add_column('member_vouchers', sa.Column('description', sa.Text(), nullable=True))
    op.add_column('member_vouchers', sa.Column('face_value', sa.Numeric(precision=12, scale=2), nullable=True))
    op.execute(
        "UPDATE member_vouchers SET "
        "name = (SELECT v.name FROM vouchers v WHERE v.id = member_vouchers.voucher_id), "
        "description = (SELECT v.description FROM vouchers v WHERE v.id = member_vouchers.voucher_id), "
        "face_value = (SELECT v.face_value FROM vouchers v WHERE v.id = member_vouchers.voucher_id) "
        "WHERE status = 'issued'"
    )


def downgrade() -> None:
    with op.batch_alter_table('member_vouchers') as batch:
        batch.drop_column('face_value')
        batch.drop_column('description')
        batch.drop_column('name')
