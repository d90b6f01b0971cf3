"""WeChatGateway against a real loopback HTTP fake: wechatpy is exercised for real, never mocked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from app.integrations.wechat import (
    HighRiskUser,
    InvalidCode,
    RateLimited,
    WeChatError,
    WeChatGateway,
    WeChatSession,
    WeChatUnavailable,
)
from tests.fakes.wechat_server import DEFAULT_APP_ID, DEFAULT_APP_SECRET, FakeWeChat, fake_wechat_server

SEND = "/cgi-bin/message/subscribe/send"
STABLE = "/cgi-bin/stable_token"
TEMPLATE = "TPL-badge"


@pytest.fixture
def wechat() -> Iterator[FakeWeChat]:
    with fake_wechat_server() as fake:
        yield fake


@pytest.fixture
def gateway(wechat: FakeWeChat) -> Iterator[WeChatGateway]:
    gw = WeChatGateway(DEFAULT_APP_ID, DEFAULT_APP_SECRET, base_url=wechat.base_url, timeout=1.0)
    yield gw
    gw.close()


# ---------------------------------------------------------------------------- login


def test_login_success_without_token_request(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    wechat.add_code("c1", "o-alice", unionid="u-alice")
    wechat.add_code("c2", "o-bob")

    alice = gateway.code_to_session("c1")
    bob = gateway.code_to_session("c2")

    assert alice == WeChatSession(openid="o-alice", unionid="u-alice", session_key="SK-o-alice")
    assert bob.openid == "o-bob" and bob.unionid is None
    assert "SK-" not in repr(alice)  # session_key never ends up in logs via repr
    assert wechat.paths() == ["/sns/jscode2session", "/sns/jscode2session"]
    assert wechat.token_fetches == 0
    _, _, query, _ = wechat.requests[0]
    assert "access_token" not in query
    assert query["js_code"] == "c1" and query["grant_type"] == "authorization_code"


@pytest.mark.parametrize(
    ("errcode", "exc_type"),
    [(40029, InvalidCode), (40163, InvalidCode), (45011, RateLimited), (40226, HighRiskUser)],
)
def test_login_error_mapping(
    wechat: FakeWeChat, gateway: WeChatGateway, errcode: int, exc_type: type[WeChatError]
) -> None:
    wechat.fail_codes["bad"] = errcode
    with pytest.raises(exc_type) as info:
        gateway.code_to_session("bad")
    assert info.value.errcode == errcode
    assert info.value.errmsg


def test_unknown_code_is_invalid(gateway: WeChatGateway) -> None:
    with pytest.raises(InvalidCode):
        gateway.code_to_session("never-issued")


def test_login_system_busy_is_unavailable(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    wechat.fail_codes["busy"] = -1
    with pytest.raises(WeChatUnavailable) as info:
        gateway.code_to_session("busy")
    assert info.value.errcode == -1


@pytest.mark.parametrize("mode", ["close", "502"])
def test_server_down_is_unavailable(wechat: FakeWeChat, gateway: WeChatGateway, mode: str) -> None:
    wechat.down = True
    wechat.down_mode = mode  # type: ignore[assignment]
    with pytest.raises(WeChatUnavailable):
        gateway.code_to_session("c1")
    with pytest.raises(WeChatUnavailable):
        gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "x"})


def test_connection_refused_is_unavailable() -> None:
    with fake_wechat_server() as fake:
        url = fake.base_url  # port is free again once the fake stops
    with (
        WeChatGateway(DEFAULT_APP_ID, DEFAULT_APP_SECRET, base_url=url, timeout=1.0) as gw,
        pytest.raises(WeChatUnavailable),
    ):
        gw.code_to_session("c1")


def test_timeout_is_unavailable_within_timeout(wechat: FakeWeChat) -> None:
    wechat.add_code("slow", "o-slow")
    wechat.delay_seconds = 3.0
    with WeChatGateway(DEFAULT_APP_ID, DEFAULT_APP_SECRET, base_url=wechat.base_url, timeout=0.3) as gw:
        started = time.monotonic()
        with pytest.raises(WeChatUnavailable):
            gw.code_to_session("slow")
        assert time.monotonic() - started < 1.5
        # The token fetch has a timeout too (upstream wechatpy has none there).
        started = time.monotonic()
        with pytest.raises(WeChatUnavailable):
            gw.send_subscribe_message("o1", TEMPLATE, {"thing1": "x"})
        assert time.monotonic() - started < 1.5
        assert wechat.count(STABLE) == 1


def test_bad_credentials_raise_wechat_error(wechat: FakeWeChat) -> None:
    with (
        WeChatGateway(DEFAULT_APP_ID, "wrong", base_url=wechat.base_url, timeout=1.0) as gw,
        pytest.raises(WeChatError) as info,
    ):
        gw.send_subscribe_message("o1", TEMPLATE, {"thing1": "x"})
    assert info.value.errcode == 40125
    assert not isinstance(info.value, WeChatUnavailable)


# ---------------------------------------------------------------------------- subscribe messages


def test_send_success_full_payload(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    msgid = gateway.send_subscribe_message(
        "o-alice",
        TEMPLATE,
        {"thing1": "首胜徽章", "number2": "3", "date3": "2026年11月22日"},
        page="pages/badge/index?id=7",
        miniprogram_state="trial",
        lang="en_US",
    )

    assert msgid is not None and msgid == str(wechat.sent[0]["msgid"])
    body = {k: v for k, v in wechat.sent[0].items() if k != "msgid"}
    assert body == {
        "touser": "o-alice",
        "template_id": TEMPLATE,
        "page": "pages/badge/index?id=7",
        "miniprogram_state": "trial",
        "lang": "en_US",
        "data": {
            "thing1": {"value": "首胜徽章"},
            "number2": {"value": "3"},
            "date3": {"value": "2026年11月22日"},
        },
    }
    assert wechat.paths() == [STABLE, SEND]
    token_body = wechat.requests[0][3]
    assert token_body == {
        "grant_type": "client_credential",
        "appid": DEFAULT_APP_ID,
        "secret": DEFAULT_APP_SECRET,
        "force_refresh": False,
    }
    assert wechat.requests[1][2]["access_token"] == "TOKEN-1"


def test_send_defaults_and_token_cached(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    gateway.send_subscribe_message("o2", TEMPLATE, {"thing1": "b"})
    assert wechat.sent[0]["miniprogram_state"] == "formal"
    assert wechat.sent[0]["lang"] == "zh_CN"
    assert "page" not in wechat.sent[0]
    assert wechat.token_fetches == 1
    assert gateway.current_token() == "TOKEN-1"


def test_expired_token_refreshes_once_then_succeeds(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    assert wechat.token_fetches == 1
    wechat.expire_token()

    msgid = gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "b"})

    assert msgid is not None
    assert wechat.token_fetches == 2
    assert wechat.force_refreshes == 0
    assert wechat.paths()[-3:] == [SEND, STABLE, SEND]
    assert gateway.current_token() == "TOKEN-2"


def test_same_token_back_triggers_one_force_refresh(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    wechat.script.extend([40001])  # WeChat rejects a token stable_token still hands out
    msgid = gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    assert msgid is not None
    assert wechat.paths() == [STABLE, SEND, STABLE, STABLE, SEND]
    assert wechat.requests[3][3]["force_refresh"] is True
    assert wechat.force_refreshes == 1


def test_a_second_rejection_within_30_s_is_retried_once_without_forcing(
    wechat: FakeWeChat, gateway: WeChatGateway
) -> None:
    """Force mode is refused by WeChat within 30 s of the last one: the second scenario's send is retried once with
    the token as it is (not left pending), and force mode is not used again."""
    wechat.script.append(40001)
    assert gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"}) is not None
    wechat.script.append(40001)
    assert gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "b"}) is not None
    assert wechat.force_refreshes == 1
    assert wechat.count(SEND) == 4


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_token_always_rejected_is_bounded(wechat: FakeWeChat, gateway: WeChatGateway, errcode: int) -> None:
    wechat.script.extend([errcode] * 1000)
    with pytest.raises(WeChatError) as info:
        gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    assert info.value.errcode == errcode
    assert wechat.count(SEND) == 2
    assert wechat.token_fetches <= 3
    # A second failure within 30 s must not force-refresh again (force mode is 20/day).
    with pytest.raises(WeChatError):
        gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    assert wechat.force_refreshes == 1
    assert len(wechat.requests) < 10


@pytest.mark.parametrize(
    ("errcode", "exc_type"),
    [
        (43101, WeChatError),
        (47003, WeChatError),
        (45009, WeChatError),
        (45011, RateLimited),
        (-1, WeChatUnavailable),
    ],
)
def test_send_errors_keep_errcode(
    wechat: FakeWeChat, gateway: WeChatGateway, errcode: int, exc_type: type[WeChatError]
) -> None:
    wechat.script.append(errcode)
    with pytest.raises(exc_type) as info:
        gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    assert type(info.value) is exc_type
    assert info.value.errcode == errcode
    assert wechat.count(SEND) == 1  # no retry for non-token errors


def test_invalid_value_reports_field(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    with pytest.raises(WeChatError) as info:
        gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "超" * 21})
    assert info.value.errcode == 47003
    assert "data.thing1.value invalid" in info.value.errmsg


def test_fail_openids_and_random_failures(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    wechat.fail_openids["o-refused"] = 43101
    with pytest.raises(WeChatError) as info:
        gateway.send_subscribe_message("o-refused", TEMPLATE, {"thing1": "a"})
    assert info.value.errcode == 43101

    wechat.failure_rate = 0.5
    outcomes: list[str] = []
    for i in range(30):
        try:
            gateway.send_subscribe_message(f"o{i}", TEMPLATE, {"thing1": "a"})
            outcomes.append("ok")
        except WeChatUnavailable:
            outcomes.append("unavailable")
    assert "ok" in outcomes and "unavailable" in outcomes


def test_invalidate_token_forces_fetch(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    gateway.invalidate_token()
    assert gateway.current_token() is None
    gateway.send_subscribe_message("o1", TEMPLATE, {"thing1": "a"})
    assert wechat.token_fetches == 2
    assert wechat.force_refreshes == 0


# ---------------------------------------------------------------------------- async + threads


async def test_async_wrappers_do_not_block_loop(wechat: FakeWeChat) -> None:
    wechat.add_code("c1", "o-alice", unionid="u-alice")
    with WeChatGateway(DEFAULT_APP_ID, DEFAULT_APP_SECRET, base_url=wechat.base_url, timeout=2.0) as gw:
        session = await gw.acode_to_session("c1")
        assert session.openid == "o-alice"

        wechat.delay_seconds = 0.3
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            msgids = await asyncio.gather(
                *(gw.asend_subscribe_message(f"o{i}", TEMPLATE, {"thing1": "徽章"}, lang="zh_TW") for i in range(4))
            )
        finally:
            task.cancel()
        assert all(msgids)
        assert ticks >= 5  # the loop kept running while the calls waited on the network
        assert {s["lang"] for s in wechat.sent} == {"zh_TW"}
        assert wechat.token_fetches == 1  # concurrent first calls share one refresh

        wechat.delay_seconds = 0
        with pytest.raises(InvalidCode):
            await gw.acode_to_session("unknown")


def test_concurrent_threads_share_one_token(wechat: FakeWeChat, gateway: WeChatGateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    wechat.delay_seconds = 0.05
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda i: gateway.send_subscribe_message(f"o{i}", TEMPLATE, {"thing1": "x"}), range(16))
        )
    assert all(results)
    assert wechat.token_fetches == 1
    assert len(wechat.sent) == 16
