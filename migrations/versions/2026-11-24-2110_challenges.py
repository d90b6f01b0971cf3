"""challenges: challenges, participations, vouchers, voucher codes, member vouchers

Revision ID: 0003_challenges
Revises: 0002_engine
Create Date: 2026-11-24 21:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.models.base

revision: str = '0003_challenges'
down_revision: str | None = '0002_engine'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('challenges',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('icon', sa.String(length=256), nullable=True),
    sa.Column('steps', JSON, nullable=False),
    sa.Column('eligibility', JSON, nullable=False),
    sa.Column('schedule_type', sa.String(length=16), nullable=False),
    sa.Column('starts_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recurrence', sa.String(length=16), nullable=True),
    sa.Column('time_limit_days', sa.Integer(), nullable=True),
    sa.Column('points_per_step', sa.Integer(), nullable=False),
    sa.Column('bonus_points', sa.Integer(), nullable=False),
    sa.Column('reward_badge', sa.String(length=64), nullable=True),
    sa.Column('reward_voucher', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('published_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('archived_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_challenges')),
    sa.UniqueConstraint('key', name=op.f('uq_challenges_key'))
    )
    op.create_table('vouchers',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('face_value', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('validity_days', sa.Integer(), nullable=True),
    sa.Column('generated', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vouchers')),
    sa.UniqueConstraint('key', name=op.f('uq_vouchers_key'))
    )
    op.create_table('challenge_participations',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('challenge_id', ID, nullable=False),
    sa.Column('instance_key', sa.String(length=16), nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('joined_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expired_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('steps_done', sa.Integer(), nullable=False),
    sa.Column('progress', JSON, nullable=False),
    sa.ForeignKeyConstraint(['challenge_id'], ['challenges.id'], name=op.f('fk_challenge_participations_challenge_id_challenges'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_challenge_participations_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_challenge_participations')),
    sa.UniqueConstraint('challenge_id', 'instance_key', 'user_id', name=op.f('uq_challenge_participations_challenge_id_instance_key_user_id'))
    )
    op.create_index('ix_challenge_participations_status_deadline', 'challenge_participations', ['status', 'deadline'], unique=False)
    op.create_index('ix_challenge_participations_user_id_status', 'challenge_participations', ['user_id', 'status'], unique=False)
    op.create_table('member_vouchers',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('voucher_id', ID, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.Column('source_type', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('issued_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_member_vouchers_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], name=op.f('fk_member_vouchers_voucher_id_vouchers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_vouchers')),
    sa.UniqueConstraint('source_type', 'source_id', name=op.f('uq_member_vouchers_source_type_source_id')),
    sa.UniqueConstraint('voucher_id', 'code', name=op.f('uq_member_vouchers_voucher_id_code'))
    )
    op.create_index('ix_member_vouchers_user_id_id', 'member_vouchers', ['user_id', 'id'], unique=False)
    op.create_index('ix_member_vouchers_voucher_id_status', 'member_vouchers', ['voucher_id', 'status'], unique=False)
    op.create_table('voucher_codes',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('voucher_id', ID, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('issued_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], name=op.f('fk_voucher_codes_voucher_id_vouchers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_codes')),
    sa.UniqueConstraint('voucher_id', 'code', name=op.f('uq_voucher_codes_voucher_id_code'))
    )
    op.create_index('ix_voucher_codes_voucher_id_issued_at', 'voucher_codes', ['voucher_id', 'issued_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_voucher_codes_voucher_id_issued_at', table_name='voucher_codes')
    op.drop_table('voucher_codes')
    op.drop_index('ix_member_vouchers_voucher_id_status', table_name='member_vouchers')
    op.drop_index('ix_member_vouchers_user_id_id', table_name='member_vouchers')
    op.drop_table('member_vouchers')
    op.drop_index('ix_challenge_participations_user_id_status', table_name='challenge_participations')
    op.drop_index('ix_challenge_participations_status_deadline', table_name='challenge_participations')
    op.drop_table('challenge_participations')
    op.drop_table('vouchers')
    op.drop_table('challenges')
