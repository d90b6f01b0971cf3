"""A badge criterion's counters are named by what it counts, not by its threshold: raising "3 stores" to 4 (or giving
a streak a grace day) kept nobody's progress, since the threshold was part of the counter scope. Existing counters
of every badge's current criteria, and the scopes awards recorded as counted in, are renamed to the new scopes.

The criteria are read with the app's Criterion model (app.rules.criteria), but both keys are computed here, frozen
as they stood at this revision: the old key is the hash of the whole normalised criterion; the new one leaves out
the threshold and a streak's grace, and writes a fixed window's instants in UTC (the same instant in another
offset is the same window). Importing app.rules.criteria.criterion_key instead would make this migration rename
to whatever a later revision's key is, and that revision's own migration would then find nothing to rename.
A criterion that no longer validates is
left as it is (its badge is not evaluated anyway). Where two criteria of one badge differ only in threshold, they
now share one counter: the first one's rows are kept (the others' are deleted, and awards' counted_in name the
shared counter once); a downgrade gives each of them a copy of the shared counter as it then stands.

Revision ID: 0015_scope_without_threshold
Revises: 0014_outbox_autoincrement
Create Date: 2026-11-25 17:30:00.000000
"""
import hashlib
import json
from datetime import UTC
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from pydantic import ValidationError

revision: str = '0015_scope_without_threshold'
down_revision: str | None = '0014_outbox_autoincrement'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_LENGTH = 24  # app.badges.rules_cache.scope_of


def _whole_key(c: Any) -> str:
    """The key before this revision: the whole normalised criterion, threshold included."""
    canonical = json.dumps(c.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _new_key(c: Any) -> str:
    """The key from this revision on (app.rules.criteria.criterion_key as it stood then)."""
    dumped = c.model_dump(mode="json", exclude={"threshold", "grace"})
    if dumped.get("window", {}).get("type") == "fixed":
        dumped["window"] = {**dumped["window"], "start": c.window.start.astimezone(UTC).isoformat(),
                            "end": c.window.end.astimezone(UTC).isoformat()}
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _renames() -> dict[str, str]:
    """Old scope → new scope of every badge's current criteria (only those that change), in criterion order."""
    from app.rules.criteria import Criterion

    renames: dict[str, str] = {}
    for badge_id, raw in op.get_bind().execute(sa.text("SELECT id, criteria FROM badges ORDER BY id")):
        criteria = json.loads(raw) if isinstance(raw, str) else raw
        for item in criteria or []:
            try:
                c = Criterion.model_validate(item)
            except ValidationError:
                continue
            old = f"b{badge_id}:{_whole_key(c)[:KEY_LENGTH]}"
            new = f"b{badge_id}:{_new_key(c)[:KEY_LENGTH]}"
            if old != new:
                renames.setdefault(old, new)
    return renames


_MOVE = sa.text(
    "UPDATE rule_counters SET scope = :new WHERE scope = :old AND NOT EXISTS ("
    "SELECT 1 FROM rule_counters AS r WHERE r.user_id = rule_counters.user_id AND r.scope = :new "
    "AND r.bucket = rule_counters.bucket)"
)
_DROP = sa.text("DELETE FROM rule_counters WHERE scope = :scope")
_COPY = sa.text(
    "INSERT INTO rule_counters (user_id, scope, bucket, state) "
    "SELECT user_id, :old, bucket, state FROM rule_counters WHERE scope = :new"
)


def _rewrite_counted_in(rename: Callable[[str], list[str]], prefixes: tuple[str, ...]) -> None:
    """Awards record the (scope, bucket) counters their badge.awarded event moved, for a revoke to take it back
    out: each pair is replaced by the pairs `rename` gives for its scope (once each)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, counted_in FROM user_badges WHERE counted_in IS NOT NULL")).all()
    counted_type = sa.JSON() if bind.dialect.name == "sqlite" else postgresql.JSONB()
    update = sa.text("UPDATE user_badges SET counted_in = :counted WHERE id = :id").bindparams(
        sa.bindparam("counted", type_=counted_type)
    )
    for award_id, raw in rows:
        counted = json.loads(raw) if isinstance(raw, str) else raw
        if not counted or not any(str(pair[0]).startswith(prefixes) for pair in counted):
            continue
        moved: list[list[str]] = []
        for scope, bucket in counted:
            for renamed in rename(scope):
                if [renamed, bucket] not in moved:
                    moved.append([renamed, bucket])
        if moved != counted:
            bind.execute(update, {"counted": moved, "id": award_id})


def _prefixes(scopes: Iterable[str]) -> tuple[str, ...]:
    return tuple({scope.split(":", 1)[0] + ":" for scope in scopes})


def upgrade() -> None:
    renames = _renames()
    if not renames:
        return
    bind = op.get_bind()
    for old, new in renames.items():
        bind.execute(_MOVE, {"old": old, "new": new})
    # What is left at an old scope duplicates a counter already moved: another criterion of the badge that
    # differs only in threshold (the first one's rows were kept). Never read again, it would come back stale on a
    # downgrade.
    for old in renames:
        bind.execute(_DROP, {"scope": old})
    _rewrite_counted_in(lambda scope: [renames.get(scope, scope)], _prefixes(renames))


def downgrade() -> None:
    olds: dict[str, list[str]] = {}
    for old, new in _renames().items():
        olds.setdefault(new, []).append(old)
    if not olds:
        return
    bind = op.get_bind()
    # The counter at a new scope is the live one: every old scope that collapsed into it gets it back.
    for new, scopes in olds.items():
        for old in scopes:
            bind.execute(_DROP, {"scope": old})
            bind.execute(_COPY, {"old": old, "new": new})
        bind.execute(_DROP, {"scope": new})
    _rewrite_counted_in(lambda scope: olds.get(scope, [scope]), _prefixes(olds))
