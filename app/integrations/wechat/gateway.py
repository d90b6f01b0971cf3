"""The only module that imports wechatpy: a thread-safe, bounded-retry facade over the WeChat server API.

Why a wrapper at all: wechatpy 2.0.0a26 has no timeouts by default (not even on the token fetch),
retries token errors by unbounded recursion, fetches an access token for code2Session although the
endpoint needs none, has no stable_token support and no ``miniprogram_state``/``lang`` for subscribe
messages. See /work/shared/notes/wechat.md.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.client.base import BaseWeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.memorystorage import MemoryStorage

from app.integrations.wechat.errors import (
    TOKEN_ERRCODES,
    InvalidCode,
    WeChatError,
    WeChatUnavailable,
    error_for,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.weixin.qq.com/"
# stable_token force mode is limited to 20/day with a 30 s gap; never force more often than this.
FORCE_REFRESH_MIN_INTERVAL = 30.0
BUSY_RETRY_SECONDS = 0.3  # before asking code2Session again after a -1 (system busy)

T = TypeVar("T")


@dataclass(frozen=True)
class WeChatSession:
    """Result of code2Session. ``session_key`` is a secret: keep it server-side, never log it."""

    openid: str
    unionid: str | None
    session_key: str = field(repr=False)


class _StableTokenClient(WeChatClient):
    """WeChatClient that fetches tokens via ``POST cgi-bin/stable_token`` with a timeout.

    stable_token in normal mode returns the same token to every caller, so several replicas refreshing
    concurrently do not invalidate each other (unlike ``GET cgi-bin/token``).
    """

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        *,
        base_url: str,
        timeout: float,
        session: Any,
        token_lock: threading.RLock,
    ) -> None:
        super().__init__(app_id, app_secret, session=session, timeout=timeout, auto_retry=False)
        # The base URL lives in three places in wechatpy; set all of them.
        self.API_BASE_URL = f"{base_url}cgi-bin/"
        self.wxa.API_BASE_URL = base_url
        self.stable_token_url = f"{base_url}cgi-bin/stable_token"
        self._token_lock = token_lock

    @property
    def access_token(self) -> str:
        """Cached token, refreshed under the shared lock so one thread refreshes at a time."""
        with self._token_lock:
            token: str = BaseWeChatClient.access_token.fget(self)
            return token

    def fetch_access_token(self, force_refresh: bool = False) -> dict[str, Any]:
        """POST stable_token (JSON body, explicit timeout) and store the token in the shared session."""
        logger.info("fetching WeChat stable access token (force_refresh=%s)", force_refresh)
        res = self._http.post(
            self.stable_token_url,
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": force_refresh,
            },
            timeout=self.timeout,
        )
        res.raise_for_status()
        result = res.json()
        if not isinstance(result, dict):
            raise ValueError("stable_token answered non-object JSON")
        errcode = int(result.get("errcode", 0) or 0)
        if errcode != 0:
            raise WeChatClientException(errcode, result.get("errmsg", ""), client=self, response=res)
        token = result.get("access_token")
        if not token:
            raise ValueError("stable_token answered without access_token")
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(self.access_token_key, token, expires_in)
        self.expires_at = int(time.time()) + expires_in
        return result


class WeChatGateway:
    """Thread-safe facade for the WeChat endpoints Laurel uses (login and subscribe messages).

    Sync methods may be called from any thread; the ``a*`` coroutines run them on a small dedicated
    executor so the event loop never blocks. Each thread gets its own WeChatClient (requests.Session is
    not thread-safe) while all share one token storage and refresh lock.
    """

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 5.0,
        *,
        max_workers: int = 4,
    ) -> None:
        self.app_id = app_id
        self._app_secret = app_secret
        self.base_url = base_url if base_url.endswith("/") else f"{base_url}/"
        self.timeout = timeout
        self._storage = MemoryStorage()
        self._token_lock = threading.RLock()
        self._last_force_refresh: float | None = None
        self._local = threading.local()
        self._clients: list[_StableTokenClient] = []
        self._clients_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="wechat-gateway")
        self._closed = False

    # ----------------------------------------------------------------- plumbing

    def _client(self) -> _StableTokenClient:
        """This thread's client, created lazily (one requests.Session per thread)."""
        client: _StableTokenClient | None = getattr(self._local, "client", None)
        if client is None:
            client = _StableTokenClient(
                self.app_id,
                self._app_secret,
                base_url=self.base_url,
                timeout=self.timeout,
                session=self._storage,
                token_lock=self._token_lock,
            )
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    @property
    def _token_key(self) -> str:
        return f"{self.app_id}_access_token"

    @property
    def _expires_at_key(self) -> str:
        return f"{self.app_id}_access_token_expires_at"

    def current_token(self) -> str | None:
        """The cached access token, if any (for diagnostics and tests; no network)."""
        token: str | None = self._storage.get(self._token_key)
        return token

    def invalidate_token(self) -> None:
        """Drop the cached token so the next call fetches one (e.g. after WeChat rejected it)."""
        with self._token_lock:
            self._storage.delete(self._token_key)
            self._storage.delete(self._expires_at_key)

    def _recover_token(self, client: _StableTokenClient, rejected: str, exc: WeChatClientException) -> None:
        """Replace a token WeChat rejected: normal stable_token first, force mode only if it is unchanged."""
        with self._token_lock:
            current = self._storage.get(self._token_key)
            if current and current != rejected:
                return  # another thread already refreshed it
            self.invalidate_token()
            client.fetch_access_token(force_refresh=False)
            if self._storage.get(self._token_key) != rejected:
                return
            now = time.monotonic()
            last = self._last_force_refresh
            if last is not None and now - last < FORCE_REFRESH_MIN_INTERVAL:
                # WeChat refuses force mode within 30 s of the last: the call is retried once with the token as it
                # is (a rejection is not always the token's fault); rejected again, it fails and is retried later.
                logger.warning("WeChat rejected the token again within %ss of a forced refresh (errcode %s); "
                               "retrying without another", FORCE_REFRESH_MIN_INTERVAL, exc.errcode)
                return
            self._last_force_refresh = now
            client.fetch_access_token(force_refresh=True)

    @staticmethod
    @contextmanager
    def _translate() -> Iterator[None]:
        """Turn wechatpy/requests exceptions into our typed errors; nothing else may leak."""
        try:
            yield
        except WeChatError:
            raise
        except WeChatClientException as exc:
            if exc.errcode is not None:
                raise error_for(int(exc.errcode), str(exc.errmsg or "")) from exc
            response = exc.response
            status = getattr(response, "status_code", None)
            if status is None or status >= 500:
                raise WeChatUnavailable(None, f"HTTP {status}") from exc
            raise WeChatError(None, f"HTTP {status}") from exc
        except requests.HTTPError as exc:
            status = getattr(exc.response, "status_code", None)
            if status is None or status >= 500:
                raise WeChatUnavailable(None, f"HTTP {status}") from exc
            raise WeChatError(None, f"HTTP {status}") from exc
        except requests.RequestException as exc:  # ConnectionError, Timeout, JSON decode, ...
            raise WeChatUnavailable(None, f"{type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # bad JSON
            raise WeChatUnavailable(None, f"bad response: {exc}") from exc

    @staticmethod
    def _as_dict(result: object) -> dict[str, Any]:
        """wechatpy returns the raw Response when the body is not JSON; treat that as unavailable."""
        if not isinstance(result, dict):
            raise WeChatUnavailable(None, "WeChat answered a non-JSON body")
        return result

    # ----------------------------------------------------------------- sync API

    def code_to_session(self, code: str) -> WeChatSession:
        """Exchange a wx.login code for openid/unionid/session_key without fetching an access token.

        Raises InvalidCode (40029/40163), RateLimited (45011), HighRiskUser (40226),
        WeChatUnavailable (network/timeout/5xx/-1/bad JSON) or WeChatError.
        """
        if not code:
            raise InvalidCode(None, "empty login code")
        client = self._client()
        with self._translate():
            raw = client.wxa._get(
                "sns/jscode2session",
                params={
                    "appid": self.app_id,
                    "secret": self._app_secret,
                    "js_code": code,
                    "grant_type": "authorization_code",
                    # A None value makes wechatpy skip the token and requests drop the param.
                    "access_token": None,
                },
            )
        result = self._as_dict(raw)
        openid = result.get("openid")
        session_key = result.get("session_key")
        if not openid or not session_key:
            raise WeChatUnavailable(None, "code2Session answered without openid/session_key")
        return WeChatSession(openid=openid, unionid=result.get("unionid") or None, session_key=session_key)

    def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        page: str | None = None,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
    ) -> str | None:
        """Send a Mini Program subscribe message; returns WeChat's msgid (as str) if it gave one.

        ``data`` maps template keys to plain values (``{"thing1": "首胜徽章"}``). A rejected token
        (40001/40014/42001) is refreshed once and the send retried once; anything else raises.
        """
        payload: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "miniprogram_state": miniprogram_state,
            "lang": lang,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if page:
            payload["page"] = page
        client = self._client()
        with self._translate():
            for attempt in range(2):
                token = client.access_token
                try:
                    raw = client.post("message/subscribe/send", params={"access_token": token}, data=payload)
                except WeChatClientException as exc:
                    if exc.errcode in TOKEN_ERRCODES and attempt == 0:
                        logger.info("WeChat rejected access token (errcode %s); refreshing once", exc.errcode)
                        self._recover_token(client, token, exc)
                        continue
                    raise
                msgid = self._as_dict(raw).get("msgid")
                return None if msgid is None else str(msgid)
        raise AssertionError("unreachable")  # pragma: no cover

    # ----------------------------------------------------------------- async API

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def acode_to_session(self, code: str) -> WeChatSession:
        """code_to_session on the gateway's executor (never blocks the event loop). WeChat's "system busy" (-1)
        is asked once more after a short pause, as WeChat advises: the code was not used, and the member would
        otherwise have to log in again. Network failures are not retried: a code WeChat did take is spent."""
        try:
            return await self._run(self.code_to_session, code)
        except WeChatUnavailable as exc:
            if exc.errcode != -1:
                raise
        await asyncio.sleep(BUSY_RETRY_SECONDS)
        return await self._run(self.code_to_session, code)

    async def asend_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: dict[str, str],
        page: str | None = None,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
    ) -> str | None:
        """send_subscribe_message on the gateway's executor (never blocks the event loop)."""
        return await self._run(
            self.send_subscribe_message,
            openid,
            template_id,
            data,
            page=page,
            miniprogram_state=miniprogram_state,
            lang=lang,
        )

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop the executor and close HTTP sessions; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client._http.close()

    def __enter__(self) -> WeChatGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
