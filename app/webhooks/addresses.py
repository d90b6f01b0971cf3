"""Which hosts a webhook may be sent to: in production, public addresses only (no SSRF).

Why: an operator's API key can register any URL, and the dispatcher POSTs to it from inside the network and
reports the answer's status and error text back through the deliveries API. Without a check that reaches
the database port, a cloud metadata service (169.254.169.254) or an internal admin page. A hostname is
checked when saved (an IP literal or `localhost`) and resolved again before each delivery (a name that
points inside), and the delivery connects to the address that was checked (a second lookup by the HTTP
client could answer otherwise: DNS rebinding). Development and test allow private hosts
(`LAUREL_WEBHOOK_PRIVATE_HOSTS`), so a local receiver works.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.request
from dataclasses import dataclass, field

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


RESOLVE_TIMEOUT = 5.0  # seconds for the check's lookup; a delivery is not held up by a name server that hangs


async def _resolve(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%", 1)[0] for info in infos]  # fe80::1%eth0: the scope is not the address


@dataclass(frozen=True)
class Target:
    """Where a delivery goes: `refusal` says why not; else the URL to connect to (the vetted address in place of
    the host name), with the headers and extensions that keep the name for HTTP and TLS."""

    refusal: str | None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)
    # The other checked addresses, in the resolver's order, to try when `url`'s cannot be connected to (as a
    # client resolving the name itself would try each).
    fallbacks: tuple[str, ...] = ()
    proxy: str | None = None  # send through this egress proxy (which resolves and connects), `url` unpinned


def _proxy_for(scheme: str, host: str) -> str | None:
    """The egress proxy from the environment (HTTP(S)_PROXY, ALL_PROXY, less NO_PROXY) for this host, if any.

    Decided here, and the dispatcher's clients do not read the environment themselves: a client applying
    NO_PROXY its own way could connect directly, and look the name up again, where this said "proxied"."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    # proxy_bypass_environment: the standard library's NO_PROXY rule (public, but not in typeshed's stubs).
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    return proxy


async def delivery_target(url: str) -> Target:
    """Resolve the host once, refuse it if any address is not public, and pin the connection to the address that
    was checked: the HTTP client resolving the name again could get another answer (DNS rebinding).

    A host that cannot be checked (it does not resolve now, or cannot be encoded) is refused for this attempt,
    never sent unpinned. Through an egress proxy (HTTP(S)_PROXY) the proxy connects, so nothing is pinned."""
    parsed = httpx.URL(url)  # parsed when saved: it parses
    host = parsed.raw_host.decode("ascii")  # the IDNA (punycode) form, as the HTTP client sends it
    literal = _literal(host)
    if literal is not None:
        refusal = _refusal(literal)
        return Target(refusal, url if refusal is None else "")
    try:
        addresses = await asyncio.wait_for(_resolve(host), RESOLVE_TIMEOUT)
    except (OSError, ValueError) as exc:  # a timeout is an OSError, an unencodable name a ValueError
        return Target(f"{parsed.host} could not be resolved to check it ({type(exc).__name__})")
    if not addresses or any(_refusal(ipaddress.ip_address(a)) is not None for a in addresses):
        return Target(f"{host} resolves to an address that is not public")  # which one is not said
    proxy = _proxy_for(parsed.scheme, host)
    if proxy is not None:
        return Target(None, url, proxy=proxy)
    netloc = host if parsed.port is None else f"{host}:{parsed.port}"
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    urls = [str(parsed.copy_with(host=a)) for a in dict.fromkeys(addresses)]
    return Target(None, urls[0], {"Host": netloc}, extensions, tuple(urls[1:]))
