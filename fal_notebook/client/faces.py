"""What the queue and platform clients share: one HTTP session behind an async face, and a blocking face that
runs each call on the shared portal thread."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from .._portal import Portal, get_portal
from ..config import Settings
from .session import HttpSession

__all__ = ["AsyncSessionClient", "BlockingClient"]

T = TypeVar("T")


class AsyncSessionClient:
    """An async client of fal's APIs over one :class:`HttpSession` (connections, retries, key rules)."""

    session: HttpSession

    @property
    def settings(self) -> Settings:
        return self.session.settings

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close this loop's connections."""
        await self.session.aclose()


class BlockingClient:
    """The blocking face of an async client: each call runs it on the portal's thread (scripts, the CLI)."""

    def __init__(self, async_client: AsyncSessionClient, portal: Portal | None = None) -> None:
        self.async_client: Any = async_client
        self._portal = portal

    @property
    def portal(self) -> Portal:
        return self._portal if self._portal is not None else get_portal()

    @property
    def settings(self) -> Settings:
        return self.async_client.settings

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.portal.call(coro, timeout=timeout)

    def close(self) -> None:
        """Close the connections held on the portal's loop."""
        self._call(self.async_client.aclose())
