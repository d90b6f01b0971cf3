"""A fake WeChat API server on 127.0.0.1 that the real wechatpy/requests stack talks to over HTTP.

Why: mocking wechatpy would hide exactly the traps we guard against (token fetches, base URLs,
timeouts, retry recursion). Point ``WeChatGateway(base_url=fake.base_url)`` at it.

Knobs on ``FakeWeChat`` (all safe to set from tests while the server runs):

* ``add_code(code, openid, unionid=None)`` – a valid login code; unknown codes answer 40029.
* ``fail_codes[code] = errcode`` – make a login code answer an error (40029, 45011, 40226, -1, ...).
* ``fail_once[code] = errcode`` – the code's first exchange answers this error, the next ones as usual.
* ``delay_seconds`` – sleep before answering any request (simulate timeouts).
* ``down`` – answer nothing: close the connection (``down_mode="close"``) or HTTP 502 (``"502"``).
* ``script`` – deque of errcodes that the next subscribe sends answer, one per send.
* ``fail_openids[openid] = errcode`` – every send to that openid answers this errcode (e.g. 43101).
* ``failure_rate`` – share of sends failing at random (seeded) with -1 or a dropped connection.
* ``expire_token()`` – invalidate the current token (next send answers 40001).
* ``token_fail_errcode`` – make token endpoints answer this errcode.

Records: ``requests`` (method, path, query, json body), ``sent`` (accepted send bodies + ``msgid``),
``token_fetches`` and ``force_refreshes``.
"""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

DEFAULT_APP_ID = "wx-test-app"
DEFAULT_APP_SECRET = "test-secret"

ERRMSGS: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "code blocked",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid! data.thing1.value invalid",
}

# Value length limits per template key prefix (subset of WeChat's table), used for 47003.
_VALUE_LIMITS = {"thing": 20, "number": 32, "letter": 32, "character_string": 32, "phrase": 5, "name": 20}

RequestRecord = tuple[str, str, dict[str, str], Any]


class _DropConnection(Exception):
    """Raised inside a handler to close the socket without answering."""


class FakeWeChat:
    """State and behaviour of the fake; every mutable field is guarded by ``lock``."""

    def __init__(self, app_id: str = DEFAULT_APP_ID, app_secret: str = DEFAULT_APP_SECRET, seed: int = 0):
        self.app_id = app_id
        self.app_secret = app_secret
        self.lock = threading.RLock()
        self.base_url = ""  # set once the server is listening
        self.requests: list[RequestRecord] = []
        self.sessions: dict[str, tuple[str, str | None]] = {}
        self.fail_codes: dict[str, int] = {}
        self.delay_seconds = 0.0
        self.down = False
        self.down_mode: Literal["close", "502"] = "close"
        self.current_token: str | None = None
        self.token_counter = 0
        self.token_fetches = 0
        self.force_refreshes = 0
        self.token_fail_errcode: int | None = None
        self.fail_once: dict[str, int] = {}
        self.login_calls = 0
        self.login_codes: list[str] = []  # every code exchanged, in order (other tests may log in meanwhile)
        self.sent: list[dict[str, Any]] = []
        self.script: deque[int] = deque()
        self.fail_openids: dict[str, int] = {}
        self.failure_rate = 0.0
        self.random = random.Random(seed)
        self.validate_values = True
        self._msgid = 1000
        self._stopping = threading.Event()

    # ----------------------------------------------------------------- knobs

    def add_code(self, code: str, openid: str, unionid: str | None = None) -> None:
        """Register a valid wx.login code."""
        with self.lock:
            self.sessions[code] = (openid, unionid)

    def expire_token(self) -> None:
        """Make the current token invalid; the next stable_token (even non-force) issues a new one."""
        with self.lock:
            self.current_token = None

    def paths(self) -> list[str]:
        """Request paths in order, for concise assertions."""
        with self.lock:
            return [path for _, path, _, _ in self.requests]

    def count(self, path: str) -> int:
        """How many requests hit ``path``."""
        return self.paths().count(path)

    # ----------------------------------------------------------------- behaviour

    def _new_token(self) -> str:
        self.token_counter += 1
        self.current_token = f"TOKEN-{self.token_counter}"
        return self.current_token

    def _check_credentials(self, appid: object, secret: object) -> dict[str, Any] | None:
        if appid != self.app_id:
            return _err(40013)
        if secret != self.app_secret:
            return _err(40125)
        return None

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        """Route one request; returns the JSON answer (may raise _DropConnection)."""
        if method == "GET" and path == "/cgi-bin/token":
            return self._token(query.get("appid"), query.get("secret"), force=True)
        if method == "POST" and path == "/cgi-bin/stable_token":
            if not isinstance(body, dict) or body.get("grant_type") != "client_credential":
                return _err(47001)
            return self._token(body.get("appid"), body.get("secret"), force=bool(body.get("force_refresh")))
        if method == "GET" and path == "/sns/jscode2session":
            return self._login(query)
        if method == "POST" and path == "/cgi-bin/message/subscribe/send":
            return self._send(query, body)
        return {"errcode": 404, "errmsg": f"fake: no route {method} {path}"}

    def _token(self, appid: object, secret: object, *, force: bool) -> dict[str, Any]:
        with self.lock:
            self.token_fetches += 1
            if self.token_fail_errcode is not None:
                return _err(self.token_fail_errcode)
            bad = self._check_credentials(appid, secret)
            if bad:
                return bad
            if force:
                self.force_refreshes += 1
            token = self.current_token if (self.current_token and not force) else self._new_token()
            return {"access_token": token, "expires_in": 7200}

    def _login(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            bad = self._check_credentials(query.get("appid"), query.get("secret"))
            if bad:
                return bad
            if query.get("grant_type") != "authorization_code":
                return _err(40002, "invalid grant_type")
            code = query.get("js_code", "")
            self.login_calls += 1
            self.login_codes.append(code)
            if code in self.fail_once:
                return _err(self.fail_once.pop(code))
            if code in self.fail_codes:
                return _err(self.fail_codes[code])
            if code not in self.sessions:
                return _err(40029)
            openid, unionid = self.sessions.pop(code)  # codes are single-use
            answer: dict[str, Any] = {"openid": openid, "session_key": f"SK-{openid}"}
            if unionid:
                answer["unionid"] = unionid
            return answer

    def _send(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        with self.lock:
            token = query.get("access_token")
            if not token or token != self.current_token:
                return _err(40001)
            if self.script:
                code = self.script.popleft()
                return _err(code) if code != 0 else self._accept(body)
            if not isinstance(body, dict) or not body.get("touser") or not body.get("template_id"):
                return _err(47001)
            if body["touser"] in self.fail_openids:
                return _err(self.fail_openids[body["touser"]])
            if self.failure_rate and self.random.random() < self.failure_rate:
                if self.random.random() < 0.5:
                    return _err(-1)
                raise _DropConnection
            if self.validate_values:
                problem = _invalid_data(body.get("data"))
                if problem:
                    return _err(47003, problem)
            return self._accept(body)

    def _accept(self, body: Any) -> dict[str, Any]:
        self._msgid += 1
        record = dict(body) if isinstance(body, dict) else {"raw": body}
        record["msgid"] = self._msgid
        self.sent.append(record)
        return {"errcode": 0, "errmsg": "ok", "msgid": self._msgid}


def _err(errcode: int, errmsg: str | None = None) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg or ERRMSGS.get(errcode, "fake error")}


def _invalid_data(data: Any) -> str | None:
    """WeChat-style 47003 message for the first invalid template value, else None."""
    if not isinstance(data, dict) or not data:
        return "argument invalid! data is empty"
    for key, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str) or value == "":
            return f"argument invalid! data.{key}.value is empty"
        prefix = key.rstrip("0123456789")
        limit = _VALUE_LIMITS.get(prefix)
        if limit is not None and len(value) > limit:
            return f"argument invalid! data.{key}.value invalid"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            # wechatpy sends JSON without a Content-Type header, so parse regardless.
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = raw.decode("utf-8", "replace")
        with fake.lock:
            fake.requests.append((method, split.path, query, body))
            delay, down, down_mode = fake.delay_seconds, fake.down, fake.down_mode
        if delay:
            fake._stopping.wait(delay)
        if down:
            if down_mode == "502":
                self._write(502, b"<html>502 Bad Gateway</html>", "text/html")
            else:
                self.close_connection = True
            return
        if raw and body is not None and isinstance(body, str):
            answer = _err(47001)
        else:
            try:
                answer = fake.handle(method, split.path, query, body)
            except _DropConnection:
                self.close_connection = True
                return
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        self._write(200, data, "application/json; charset=utf-8")

    def _write(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up first (the timeout tests' slow answers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connects under concurrent tests (then 1 s timeouts)

    def __init__(self, fake: FakeWeChat) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def fake_wechat_server(
    app_id: str = DEFAULT_APP_ID, app_secret: str = DEFAULT_APP_SECRET, seed: int = 0
) -> Iterator[FakeWeChat]:
    """Run a FakeWeChat on a random 127.0.0.1 port for the duration of the block."""
    fake = FakeWeChat(app_id=app_id, app_secret=app_secret, seed=seed)
    server = _Server(fake)
    port = server.server_address[1]
    fake.base_url = f"http://127.0.0.1:{port}/"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-wechat", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
