"""Settings refuse unsafe or malformed values at start-up."""

from __future__ import annotations

import pytest


def test_production_refuses_default_jwt_secret() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    with pytest.raises(ValidationError, match="LAUREL_JWT_SECRET"):
        Settings(env="production")
    Settings(env="production", jwt_secret="x" * 40)


def test_malformed_quiet_hours_refused_at_start_up() -> None:
    from pydantic import ValidationError

    from app.config import Settings

    with pytest.raises(ValidationError, match="quiet hours"):
        Settings(quiet_hours="late evening")
    assert Settings(quiet_hours="").quiet_hours == ""
