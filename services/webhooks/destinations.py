"""Which URLs webhooks may POST to.

A webhook URL is chosen by a client but fetched from inside our network, so unless the
deployment allows it, it must not reach loopback, private, link-local (cloud metadata) or
otherwise non-public addresses. Literal addresses and "localhost" are refused when the webhook
is created; host names are checked on every connection, against the addresses DNS returns
then (a name that later resolves to a private address is caught too), by `PublicOnlyResolver`.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.runtime.errors import InvalidArgument

MAX_URL_LENGTH = 2048


class AddressNotAllowed(OSError):
    """The destination is not a public address and this deployment only delivers to those."""

    def __init__(self, message: str) -> None:
        # errno and strerror: aiohttp reports a resolver's OSError by its strerror.
        super().__init__(errno.EACCES, message)

    def __str__(self) -> str:
        return str(self.strerror)


def check_url(url: str, private_allowed: bool) -> str:
    """The URL if it is an absolute http(s) URL we may deliver to; INVALID_ARGUMENT otherwise."""
    if not url:
        raise InvalidArgument("url is required")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError as error:
        raise InvalidArgument(f"url is malformed: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument(f"url must start with http:// or https://, got {url[:64]!r}")
    if not parts.hostname:
        raise InvalidArgument("url has no host")
    if parts.fragment:
        raise InvalidArgument("url must not have a #fragment (it is never sent)")
    if any(c.isspace() for c in url):
        raise InvalidArgument("url must not contain whitespace")
    if port == 0:
        raise InvalidArgument("url has port 0")
    if not private_allowed:
        try:
            refuse_private_host(parts.hostname)
        except AddressNotAllowed as error:
            raise InvalidArgument(f"url: {error}") from None
    return url


def refuse_private_host(host: str) -> None:
    """Refuse a literal non-public address or localhost; host names are left to the resolver."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise AddressNotAllowed(f"{host} is not a public address")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: checked when it is resolved
    refuse_private_address(address)


def refuse_private_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        raise AddressNotAllowed(f"{address} is not a public address")


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses. aiohttp connects to what the resolver
    returns, so a name cannot resolve to a public address when checked and a private one when
    connected (DNS rebinding)."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        public = []
        for result in results:
            try:
                refuse_private_address(ipaddress.ip_address(result["host"]))
            except AddressNotAllowed:
                continue
            public.append(result)
        if not public:
            raise AddressNotAllowed(f"{host} resolves only to addresses that are not public")
        return public

    async def close(self) -> None:
        await self._resolver.close()
