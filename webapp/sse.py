"""Server-Sent Events responses that hold one of the user's stream slots (DESIGN.md §16)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

# A comment line at least this often keeps proxies from closing an idle stream (§5).
HEARTBEAT_SECONDS = 15


class SlotEventSourceResponse(EventSourceResponse):
    """An SSE response that gives its stream slot back however it ends (the client leaves,
    the server stops, the stream finishes, or it never got to start)."""

    def __init__(
        self, content: AsyncIterable[Any], *, release: Callable[[], None]
    ) -> None:
        super().__init__(content, ping=HEARTBEAT_SECONDS)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
