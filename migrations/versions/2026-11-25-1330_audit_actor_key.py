"""audit_log.actor_key_id: the API key an operator acted with. Key names are not unique, so the name alone
(`actor`) could not tell two keys apart. NULL for the bootstrap key, the CLI and entries made before.

Revision ID: 0011_audit_actor_key
Revises: 0010_streak_award_keys
Create Date: 2026-11-25 13:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_audit_actor_key'
down_revision: str | None = '0010_streak_award_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('audit_log', sa.Column('actor_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                         nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_log') as batch:
        batch.drop_column('actor_key_id')
