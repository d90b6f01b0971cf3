"""users.points and points_ledger.balance_after become 64-bit on PostgreSQL: a balance past 2,147,483,647 made
every later credit of that member fail, and their events with it. SQLite's INTEGER already holds 64 bits.

Revision ID: 0009_big_balances
Revises: 0008_award_counted_in
Create Date: 2026-11-25 11:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_big_balances'
down_revision: str | None = '0008_award_counted_in'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [('users', 'points'), ('points_ledger', 'balance_after')]


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    # Fails (out of range) if a balance has grown past 32 bits: downgrading would lose it.
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
