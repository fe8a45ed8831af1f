"""Where a webhook may be delivered: public addresses only (unless FLEET_WEBHOOK_ALLOW_PRIVATE), checked when it is
registered and again at each delivery, on the address actually connected to, so DNS rebinding cannot get round it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

# Names that point at the machine itself or a cloud's metadata service, whatever DNS says.
_RESERVED_NAMES = ("localhost", "metadata", "metadata.google.internal", "instance-data", "metadata.azure.com")
_RESERVED_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The URL may not be delivered to; the message says why in words that name no network detail."""


@dataclass(frozen=True, slots=True)
class Target:
    """A delivery's request: the URL with its host replaced by the checked address, and what keeps TLS and
    virtual hosting right (the Host header, and the name the certificate must carry)."""

    url: httpx.URL
    host_header: str
    sni_hostname: str | None


def parse_target(raw: str) -> httpx.URL:
    """The URL, if its form is one we deliver to: http(s), a host, no credentials in it."""
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"url is not a usable URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise TargetRefused("url must be http:// or https:// with a host")
    if url.userinfo:
        raise TargetRefused("url may not carry a user name or password: receivers check the signature instead")
    host = url.host.lower().rstrip(".")
    if host in _RESERVED_NAMES or host.endswith(_RESERVED_SUFFIXES):
        raise TargetRefused("url names a local or metadata host, which webhooks may not reach")
    return url


def literal_address(host: str) -> IpAddress | None:
    """The address a host names by itself, in any spelling the resolver accepts (``2130706433``, ``0x7f.1``,
    ``127.1`` are all 127.0.0.1), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # the legacy forms inet_aton (and so curl) accepts
    except OSError:
        return None


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def resolve_target(raw: str, allow_private: bool) -> Target:
    """Resolve the URL's host now, refuse it unless every address is public (or private ones are allowed), and
    pin the first: the connection goes to that address, whatever the name resolves to a moment later."""
    url = parse_target(raw)
    host = url.host
    address = literal_address(host)
    if address is not None:
        addresses = [address]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, url.port, type=socket.SOCK_STREAM)
        except OSError:
            raise TargetRefused("the host name did not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused("the host name did not resolve")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise TargetRefused("the target is not a public address (FLEET_WEBHOOK_ALLOW_PRIVATE allows it)")
    pinned = str(addresses[0])
    host_header = host if url.port is None else f"{host}:{url.port}"
    return Target(url.copy_with(host=pinned), host_header, host if url.scheme == "https" else None)
