"""Voucher tests reuse the challenge helpers (members, events, clock, challenge creation)."""

from tests.challenges.conftest import clock, make_challenge, member, outbox, send  # noqa: F401
