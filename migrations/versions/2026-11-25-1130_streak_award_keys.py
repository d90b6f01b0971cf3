"""Repeatable streak badges: award keys name the period that completed a multiple of the threshold.

Awards made before carry 'streak:<multiples>' (or, for a few commits, 'streak:<run start>:<multiples>'),
which the engine no longer places in a run. Their evidence records the window of the completing event (its
period's start), so each is rewritten as 'streak@<period>' (a day '2026-11-20' or an ISO week '2026-W47'),
which the engine counts within the run that holds it; a second award completed in the same period becomes
'streak@<period>#2' (keys are unique per member and badge).

Revision ID: 0010_streak_award_keys
Revises: 0009_big_balances
Create Date: 2026-11-25 11:30:00.000000
"""
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0010_streak_award_keys'
down_revision: str | None = '0009_big_balances'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
awards = sa.table('user_badges', sa.column('id', sa.BigInteger), sa.column('user_id', sa.BigInteger),
                  sa.column('badge_id', sa.BigInteger),
                  sa.column('award_key', sa.String), sa.column('evidence', JSON))
badges = sa.table('badges', sa.column('id', sa.BigInteger), sa.column('repeatable', sa.Boolean),
                  sa.column('criteria', JSON))
LEGACY = re.compile(r'^streak:(?:[^:]+:)?\d+$')


def period_of(criteria: Any, evidence: Any) -> str | None:
    """The completing event's period key, from the streak criterion's unit and the evidence's window start."""
    try:
        unit = criteria[0]['window']['unit']
        start = date.fromisoformat(evidence['criteria'][0]['window_start'][:10])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if unit == 'day':
        return start.isoformat()
    if unit == 'week':
        iso = start.isocalendar()
        return f'{iso.year:04d}-W{iso.week:02d}'
    return None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(awards.c.id, awards.c.user_id, awards.c.badge_id, awards.c.award_key, awards.c.evidence,
                  badges.c.criteria)
        .join(badges, badges.c.id == awards.c.badge_id)
        .where(badges.c.repeatable.is_(True), awards.c.award_key.like('streak%'))
        .order_by(awards.c.id)
    ).all()
    taken = {(r.user_id, r.badge_id, r.award_key) for r in rows}
    for r in rows:
        period = period_of(r.criteria, r.evidence) if LEGACY.match(r.award_key) else None
        if period is None:
            continue
        key, n = f'streak@{period}', 1
        while (r.user_id, r.badge_id, key) in taken:
            n += 1
            key = f'streak@{period}#{n}'
        taken.add((r.user_id, r.badge_id, key))
        bind.execute(sa.update(awards).where(awards.c.id == r.id).values(award_key=key))


def downgrade() -> None:
    pass  # the old keys placed no award in a run; the new ones are still unique per member and badge
