"""rank snapshots: what the rank_improved check last saw of each member on a board

Revision ID: 0006_rank_snapshots
Revises: 0005_notifications
Create Date: 2026-11-24 22:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0006_rank_snapshots'
down_revision: str | None = '0005_notifications'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('leaderboard_rank_snapshots',
    sa.Column('board_id', ID, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('score', sa.Numeric(), nullable=False),
    sa.Column('worst_rank', sa.Integer(), nullable=True),
    sa.Column('notified_on', sa.Date(), nullable=True),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['board_id'], ['leaderboards.id'],
                            name=op.f('fk_leaderboard_rank_snapshots_board_id_leaderboards'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                            name=op.f('fk_leaderboard_rank_snapshots_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('board_id', 'period', 'user_id', name=op.f('pk_leaderboard_rank_snapshots'))
    )
    op.create_index('ix_leaderboard_rank_snapshots_user_id', 'leaderboard_rank_snapshots', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_leaderboard_rank_snapshots_user_id', table_name='leaderboard_rank_snapshots')
    op.drop_table('leaderboard_rank_snapshots')
