"""Exact ranks without counting rows: a three-level count of scores, maintained as scores move.

rank(s) = 1 + (members with a score above s). Counting those rows grows with the rank (a member ranked
900,000th makes PostgreSQL count 900,000 index entries), and a plain per-score histogram grows with the
number of distinct scores above (spend totals in cents are nearly all distinct). So each view keeps:

- level 2: members per *coarse* bucket (one per doubling of the score: ~40 buckets for 0 … 10^10),
- level 1: members per *fine* bucket inside a coarse one (256 per doubling, each ~0.4 % of the score wide),
- level 0: members per exact score inside a fine bucket.

Members above s = Σ coarse buckets above s's coarse bucket + Σ fine buckets above s's fine bucket in the same
coarse bucket + Σ exact scores above s in the same fine bucket: three short index range scans, whatever the
rank. The bucket function only has to be non-decreasing in the score; it uses integer arithmetic (a float-like
exponent/mantissa split of the score in hundredths) so every process computes the same bucket for a score.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal

MANTISSA_BITS = 8  # 2**8 fine buckets per doubling of the score
_EXACT_BELOW = 1 << (MANTISSA_BITS + 1)  # hundredths below this get a bucket each
SCALE = Decimal(100)
# Scores are bucketed as if no larger than ±2**62 hundredths (~4.6e16), so the bucket fits a bigint whatever the
# score. All larger scores share the top bucket, and the exact level still orders them, so ranks stay exact.
HUNDREDTHS_CAP = 1 << 62

COARSE, FINE, EXACT = 2, 1, 0

CountKey = tuple[int, int, Decimal]  # (level, parent, key)


def _bucket_nonneg(m: int) -> int:
    if m < _EXACT_BELOW:
        return m
    shift = m.bit_length() - (MANTISSA_BITS + 1)
    return (shift << MANTISSA_BITS) + (m >> shift)


def fine_bucket(score: Decimal) -> int:
    """Non-decreasing integer bucket of a score (negative scores get negative buckets)."""
    m = int((score * SCALE).to_integral_value(rounding=ROUND_FLOOR))
    m = max(-HUNDREDTHS_CAP, min(HUNDREDTHS_CAP, m))
    if m >= 0:
        return _bucket_nonneg(m)
    return -1 - _bucket_nonneg(-m - 1)


def coarse_bucket(fine: int) -> int:
    return fine >> MANTISSA_BITS  # floor division: stays non-decreasing for negative buckets


def count_keys(score: Decimal) -> list[CountKey]:
    """The three count rows a member holding `score` is counted in."""
    fine = fine_bucket(score)
    coarse = coarse_bucket(fine)
    return [(COARSE, 0, Decimal(coarse)), (FINE, coarse, Decimal(fine)), (EXACT, fine, score)]


def above_ranges(score: Decimal) -> list[tuple[int, int, Decimal]]:
    """(level, parent, key) triples: members above `score` are those with a larger key in each range."""
    return count_keys(score)


def count_deltas(old: Decimal | None, new: Decimal | None) -> dict[CountKey, int]:
    """Count changes when a member's score moves from `old` to `new` (None: not on the board)."""
    out: dict[CountKey, int] = defaultdict(int)
    if old is not None:
        for k in count_keys(old):
            out[k] -= 1
    if new is not None:
        for k in count_keys(new):
            out[k] += 1
    return {k: d for k, d in out.items() if d}



def hundredths_sql(score: str) -> str:
    """The score in whole hundredths, rounded down and capped, as fine_bucket computes it (PostgreSQL, bigint)."""
    return f"least(greatest(floor(({score}) * {SCALE}), -{HUNDREDTHS_CAP}), {HUNDREDTHS_CAP})::bigint"


def fine_bucket_sql(m: str) -> str:
    """`fine_bucket` as a PostgreSQL expression over `m`, a bigint column holding `hundredths_sql(score)`.

    The PostgreSQL write path computes count keys inside its one statement, so this must agree with
    `fine_bucket` for every score (tests/leaderboards/test_batch_scores.py compares them): u is the magnitude
    the negative branch mirrors, shift its bit length above MANTISSA_BITS + 1.
    """
    u = f"(CASE WHEN {m} >= 0 THEN {m} ELSE -{m} - 1 END)"
    shift = f"(length(ltrim({u}::bit(64)::text, '0')) - {MANTISSA_BITS + 1})"
    bucket = f"(CASE WHEN {shift} <= 0 THEN {u} ELSE ({shift}::bigint << {MANTISSA_BITS}) + ({u} >> {shift}) END)"
    return f"(CASE WHEN {m} >= 0 THEN {bucket} ELSE -1 - {bucket} END)"
