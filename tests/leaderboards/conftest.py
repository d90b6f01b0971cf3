from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.leaderboards.helpers import World


@pytest.fixture
def world(client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any) -> World:
    return World(client, admin_headers, login)
