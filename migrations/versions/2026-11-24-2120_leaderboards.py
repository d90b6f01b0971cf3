"""leaderboards: board definitions, scores per period and view, rank counts

Revision ID: 0004_leaderboards
Revises: 0003_challenges
Create Date: 2026-11-24 21:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = '0004_leaderboards'
down_revision: str | None = '0003_challenges'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('leaderboards',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('icon', sa.String(length=256), nullable=True),
    sa.Column('metric', JSON, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('dimensions', JSON, nullable=False),
    sa.Column('display', JSON, nullable=False),
    sa.Column('privacy', sa.String(length=16), nullable=False),
    sa.Column('min_group_size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leaderboards')),
    sa.UniqueConstraint('key', name=op.f('uq_leaderboards_key'))
    )
    op.create_table('leaderboard_scores',
    sa.Column('board_id', ID, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('dim', sa.String(length=160), nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('score', sa.Numeric(), nullable=False),
    sa.Column('reached_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['board_id'], ['leaderboards.id'], name=op.f('fk_leaderboard_scores_board_id_leaderboards'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_leaderboard_scores_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('board_id', 'period', 'dim', 'user_id', name=op.f('pk_leaderboard_scores'))
    )
    op.create_index('ix_leaderboard_scores_order', 'leaderboard_scores',
                    ['board_id', 'period', 'dim', sa.text('score DESC'), 'reached_at', 'user_id'], unique=False)
    op.create_index('ix_leaderboard_scores_user_id', 'leaderboard_scores', ['user_id'], unique=False)
    op.create_table('leaderboard_score_counts',
    sa.Column('board_id', ID, nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('dim', sa.String(length=160), nullable=False),
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('parent', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('key', sa.Numeric(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['board_id'], ['leaderboards.id'], name=op.f('fk_leaderboard_score_counts_board_id_leaderboards'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('board_id', 'period', 'dim', 'level', 'parent', 'key', name=op.f('pk_leaderboard_score_counts'))
    )


def downgrade() -> None:
    op.drop_table('leaderboard_score_counts')
    op.drop_index('ix_leaderboard_scores_user_id', table_name='leaderboard_scores')
    op.drop_index('ix_leaderboard_scores_order', table_name='leaderboard_scores')
    op.drop_table('leaderboard_scores')
    op.drop_table('leaderboards')
