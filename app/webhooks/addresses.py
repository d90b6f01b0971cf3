"""Which hosts a webhook may be sent to: in production, public addresses only (no SSRF).

Why: an operator's API key can register any URL, and the dispatcher POSTs to it from inside the network and
reports the answer's status and error text back through the deliveries API. Without a check that reaches
the database port, a cloud metadata service (169.254.169.254) or an internal admin page. A hostname is
checked when saved (an IP literal or `localhost`) and resolved again before each delivery (a name that
points inside). Development and test allow them (`LAUREL_WEBHOOK_PRIVATE_HOSTS`), so a local receiver works.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1 is 10.0.0.1
    if mapped is not None:
        address = mapped
    return None if address.is_global else f"{address} is not a public address"


def saved_url_refusal(url: str) -> str | None:
    """Why a URL cannot be saved as a webhook when private hosts are not allowed, else None (no DNS here)."""
    host = httpx.URL(url).host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is not a public host"
    address = _literal(host)
    return _refusal(address) if address is not None else None


async def delivery_refusal(url: str) -> str | None:
    """Why a delivery must not be sent: its host resolves to an address that is not public, else None.

    A name that does not resolve is left to the HTTP client, which reports it as the attempt's error."""
    host = httpx.URL(url).host
    address = _literal(host)
    if address is not None:
        return _refusal(address)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return None
    for info in infos:
        refusal = _refusal(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))  # fe80::1%eth0
        if refusal is not None:
            return f"{host} resolves to {refusal.split(' ', 1)[0]}, which is not a public address"
    return None
