"""Shared benchmark plumbing: a fresh PostgreSQL database, a live uvicorn server, latency statistics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("LAUREL_BENCH_PG_HOST", "127.0.0.1")
ADMIN_KEY = "bench-admin-key-0123456789abcdef"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
# uvicorn worker processes serving the benchmarked app (production runs one per core; see README).
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))


def psql(sql: str, db: str = "postgres") -> str:
    out = subprocess.run(["psql", "-h", PG_HOST, "-U", "postgres", "-d", db, "-qAtc", sql],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def fresh_database(name: str) -> str:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{name}"
    from app.kit import migrate

    migrate.upgrade(url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(database_url: str, **env: str) -> Iterator[str]:
    """uvicorn in a subprocess (BENCH_WORKERS workers, default 1; uvloop/httptools when installed)."""
    port = free_port()
    environ = {
        **os.environ,
        "LAUREL_DATABASE_URL": database_url,
        "LAUREL_ADMIN_API_KEY": ADMIN_KEY,
        "LAUREL_JWT_SECRET": JWT_SECRET,
        "LAUREL_WORKER_ENABLED": "false",
        "LAUREL_LOG_LEVEL": "WARNING",
        "LAUREL_DB_POOL_SIZE": "40",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--workers", str(WORKERS)],
        cwd=ROOT, env=environ,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready")
        yield base
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


@dataclass
class Stats:
    label: str
    count: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, round(p / 100 * (len(data) - 1)))]

    def line(self) -> str:
        return (f"{self.label:<44} {self.rate:>10.1f}/s   p50 {self.pct(50):7.2f} ms   p99 {self.pct(99):7.2f} ms"
                f"   (n={self.count})")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    pg = psql("SHOW server_version")
    return (f"{platform.node()}: {os.cpu_count()} vCPU {cpu}{mem}; Python {platform.python_version()}; "
            f"PostgreSQL {pg}")


class RawResponse:
    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


class RawClient:
    """A minimal HTTP/1.1 keep-alive client: one connection, one request at a time.

    Why: the load generator shares the machine's two vCPUs with the service and PostgreSQL, and httpx's
    connection pool costs more CPU per request than the cheapest endpoints measured (GET /healthz reached
    1,336 req/s at 8 clients and 366 at 32 through httpx). This keeps the client's share small; responses
    are read by Content-Length (the service always sends it).
    """

    def __init__(self) -> None:
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host = ""

    async def request(self, method: str, url: str, params: dict[str, Any] | None = None, body: Any = None,
                      headers: dict[str, str] | None = None) -> RawResponse:
        parts = urlsplit(url)
        if self._writer is None:
            self._host = parts.netloc
            self._reader, self._writer = await asyncio.open_connection(parts.hostname, parts.port)
        assert self._reader is not None
        target = parts.path + (f"?{urlencode(params)}" if params else (f"?{parts.query}" if parts.query else ""))
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host}", f"Content-Length: {len(payload)}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return RawResponse(status, await self._reader.readexactly(length))

    async def get(self, url: str, params: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> RawResponse:
        return await self.request("GET", url, params=params, headers=headers)

    async def post(self, url: str, json: Any = None, headers: dict[str, str] | None = None) -> RawResponse:
        return await self.request("POST", url, body=json, headers=headers)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


async def closed_loop(label: str, clients: int, seconds: float, make_request) -> Stats:  # type: ignore[no-untyped-def]
    """`clients` workers, each on its own keep-alive connection, sending one request after another."""
    latencies: list[float] = []
    count = 0
    stop = time.perf_counter() + seconds
    conns = [RawClient() for _ in range(clients)]

    async def worker(wid: int) -> None:
        nonlocal count
        i = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await make_request(conns[wid], wid, i)
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
            count += 1
            i += 1

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - t0
    finally:
        for c in conns:
            await c.aclose()
    return Stats(label, count, elapsed, latencies)
