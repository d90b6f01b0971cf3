"""Shared benchmark plumbing: a fresh PostgreSQL database, a live uvicorn server, latency statistics."""

from __future__ import annotations

import asyncio
import contextlib
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


async def closed_loop(label: str, clients: int, seconds: float, make_request) -> Stats:  # type: ignore[no-untyped-def]
    """`clients` workers each sending one request after another for `seconds`."""
    latencies: list[float] = []
    count = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker(wid: int) -> None:
            nonlocal count
            i = 0
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await make_request(client, wid, i)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
                count += 1
                i += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - t0
    return Stats(label, count, elapsed, latencies)
