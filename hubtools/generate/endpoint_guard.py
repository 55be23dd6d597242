"""Which endpoints a public app's visitors may make the server call: no server-side request forgery.

In a Space, the endpoint box names a URL the *server* connects to, so an unchecked box reaches the
Space's own loopback services, the cloud metadata address (169.254.169.254) or the private network
around it. :class:`EndpointGuard` accepts only ``https`` endpoints whose host resolves to public
addresses, or endpoints under a prefix the operator allowed (``HUBTOOLS_ALLOWED_ENDPOINTS``). The
check runs three times: on the URL before anything is sent, on every request (redirects included,
:meth:`EndpointGuard.check`), and on the address actually connected to (:meth:`EndpointGuard.resolver`,
so a DNS answer that changes between the check and the connection changes nothing).

>>> guard = EndpointGuard(allowed=("http://10.0.0.5:8000/v1",))
>>> guard.check("http://10.0.0.5:8000/v1")
>>> guard.check("https://169.254.169.254/latest")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
hubtools.errors.BackendError: https://169.254.169.254/latest: refused: 169.254.169.254 is not a public address...
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import BackendError

__all__ = ["EndpointGuard", "is_public_address"]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_address(address: str) -> bool:
    """True when ``address`` (an IPv4 or IPv6 literal) is globally routable unicast.

    Loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT) addresses are
    not, nor IPv6 addresses that embed one (IPv4-mapped, 6to4, Teredo, NAT64).

    >>> [is_public_address(a) for a in ("8.8.8.8", "127.0.0.1", "10.1.2.3", "::ffff:127.0.0.1", "fe80::1")]
    [True, False, False, False, False]
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return is_public_address(str(ip.ipv4_mapped))
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return bool(ip.is_global and not (ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local
                                      or ip.is_reserved or ip.is_unspecified))


def _refused(url: str, why: str) -> BackendError:
    return BackendError(f"{url}: refused: {why}", reason="refused",
                        hint="in a Space, use an https endpoint on a public address, or ask the Space's operator "
                             "to allow it in HUBTOOLS_ALLOWED_ENDPOINTS")


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class EndpointGuard:
    """The endpoint rule of a public app: https on public addresses, or a prefix in ``allowed``."""

    #: URL prefixes the operator allows whatever their scheme and address (``HUBTOOLS_ALLOWED_ENDPOINTS``)
    allowed: tuple[str, ...] = ()

    def _allowlisted(self, url: str) -> bool:
        target = urlsplit(url)
        for prefix in self.allowed:
            p = urlsplit(prefix.strip())
            if not p.scheme or not p.hostname:
                continue
            try:
                same_port = (p.port or _default_port(p.scheme)) == (target.port or _default_port(target.scheme))
            except ValueError:
                continue
            path, want = target.path or "/", p.path.rstrip("/")
            if (p.scheme.lower() == target.scheme.lower() and p.hostname == (target.hostname or "").lower()
                    and same_port and (not want or path == want or path.startswith(want + "/"))):
                return True
        return False

    def _allowlisted_host(self, host: str) -> bool:
        return any((urlsplit(p.strip()).hostname or "") == host.lower() for p in self.allowed)

    def check(self, url: str) -> None:
        """Raise when ``url`` may not be called: not allowlisted and not https on public addresses.

        Raises:
            BackendError: ``reason="refused"``, with what to do.
        """
        if self._allowlisted(url):
            return
        parts = urlsplit(url)
        if parts.scheme.lower() != "https":
            raise _refused(url, "only https endpoints are accepted here")
        host = parts.hostname
        if not host:
            raise _refused(url, "no host in the URL")
        try:
            port = parts.port or 443
        except ValueError:
            raise _refused(url, "the port is not a number") from None
        for address in self._addresses(url, host, port):
            if not is_public_address(address):
                raise _refused(url, f"{address} is not a public address")

    @staticmethod
    def _addresses(url: str, host: str, port: int) -> list[str]:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            return [host]
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise BackendError(f"{url}: unreachable (the host name does not resolve)", reason="unreachable",
                               hint="check the endpoint's host name") from None
        return sorted({info[4][0] for info in infos})

    def resolver(self) -> Any:
        """An aiohttp resolver that refuses to connect to a non-public address (allowlisted hosts aside)."""
        from aiohttp.resolver import DefaultResolver

        guard = self

        class PublicOnlyResolver(DefaultResolver):
            async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
                answers = await super().resolve(host, port, family)
                if guard._allowlisted_host(host):
                    return answers
                for answer in answers:
                    if not is_public_address(answer["host"]):
                        raise OSError(f"refused: {host} resolved to {answer['host']}, not a public address")
                return answers

        return PublicOnlyResolver()
