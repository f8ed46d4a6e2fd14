"""Media downloads that follow redirects by hand, each hop checked.

httpx's ``follow_redirects=True`` would go wherever a server points: ``http://169.254.169.254/`` (a cloud's
metadata service), ``http://localhost:8888/api/…`` (the Jupyter server itself) or a private address. A CDN
legitimately redirects to its storage, so redirects are followed, but only to an http(s) URL whose host is
public (every address it resolves to is a global one) or is the very host the download started from (the
emulator and a self-hosted CDN live on one host).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from typing import TYPE_CHECKING

from ..errors import TransportError
from ..media import is_web_url

if TYPE_CHECKING:
    import httpx

    from .session import HttpSession

__all__ = ["open_media", "public_host", "REDIRECTS"]

REDIRECTS = (301, 302, 303, 307, 308)


def _global(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_global
    except ValueError:
        return False


async def public_host(host: str) -> bool:
    """False when ``host`` is, or resolves to, a non-global address (loopback, private, link-local…). A name
    that does not resolve here passes: the request itself will fail to connect, there is nothing to protect."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return _global(host)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return True
    return bool(infos) and all(_global(str(info[4][0])) for info in infos)


async def _check_hop(target: str, first_host: str, what: str) -> None:
    if not is_web_url(target):
        raise TransportError(f"{what}: refused a redirect to {target[:80]!r}: only http(s) is followed")
    host = (urllib.parse.urlsplit(target).hostname or "").lower()
    if host != first_host and not await public_host(host):
        raise TransportError(f"{what}: refused a redirect to {host!r}: not a public host")


async def open_media(session: HttpSession, url: str, *, what: str, max_redirects: int = 5) -> httpx.Response:
    """A streamed GET of a media URL (no key), following at most ``max_redirects`` checked redirects. The
    caller closes the answer."""
    first_host = (urllib.parse.urlsplit(url).hostname or "").lower()
    for _hop in range(max_redirects + 1):
        response = await session.send(
            "GET", url, what=what, api=False, idempotent=True, stream=True, headers={"Accept": "*/*"},
            accept=REDIRECTS,
        )
        if response.status_code not in REDIRECTS:
            return response
        location = response.headers.get("location", "")
        await response.aclose()
        if not location:
            raise TransportError(f"{what}: HTTP {response.status_code} without a Location")
        url = urllib.parse.urljoin(url, location)
        await _check_hop(url, first_host, what)
    raise TransportError(f"{what}: more than {max_redirects} redirects")
