"""Bytes onto open SSE connections: the server's own `send`, writes that never wait on a full
connection, and the response class whose body the live hub writes.

A viewer's connection is written by the fan-out in the feed's task (webapp/live/fanout.py);
a write the connection cannot take at once is finished in a task of its own.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from typing import Any

from sse_starlette import ServerSentEvent
from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.series import ns_to_datetime
from webapp.sse import SlotEventSourceResponse

SERVER_SEND = "optria.server_send"


class ServerSendMiddleware:
    """Keeps the server's own `send` in the scope (outermost of our middlewares).

    The hub writes each tick's bytes to thousands of streams; a body message needs none of the
    wrappers in between, which all act on the response start only, and at 5,000 viewers going
    through them was about a tenth of the fan-out. A middleware that rewrites bodies (e.g.
    compression) would have to exclude text/event-stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


class LiveEventSourceResponse(SlotEventSourceResponse):
    """An SSE response whose events the live hub writes straight to the connection.

    sse-starlette still runs the response (headers, heartbeats, noticing the client leave or
    the server stop); once the headers are out, `serve` gets the server's `send` (see
    ServerSendMiddleware) and writes until the stream ends, returning True when it ended by
    revocation."""

    def __init__(
        self, serve: Callable[[Send], Awaitable[bool]], *, release: Callable[[], None]
    ) -> None:
        super().__init__(self._events(), release=release)
        self._serve = serve
        self._send: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = scope.get(SERVER_SEND, send)
        await super().__call__(scope, receive, send)

    async def _events(self) -> AsyncIterator[ServerSentEvent]:
        assert self._send is not None  # first asked for right after the headers were sent
        if await self._serve(self._send):
            yield ServerSentEvent(data="session ended", event="close")


def body(data: bytes) -> dict[str, Any]:
    """One more piece of a streaming response."""
    return {"type": "http.response.body", "body": data, "more_body": True}


def start_write(awaitable: Awaitable[None]) -> Awaitable[None] | None:
    """Run a coroutine here up to its first suspension: None if it finished without one (an
    ASGI send does, unless the connection's buffer is full), else an awaitable finishing it."""
    if not isinstance(awaitable, Coroutine):
        return awaitable
    try:
        suspended_on = awaitable.send(None)
    except StopIteration:
        return None
    return _resume(awaitable, suspended_on)


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, None], suspended_on: Any) -> Generator[Any, Any, None]:
    """Hand a started coroutine's pending await to the task awaiting this, as `await` would."""
    pending = suspended_on
    while True:
        try:
            value = yield pending
        except BaseException as exc:  # cancellation, delivered where the coroutine waits
            try:
                pending = coroutine.throw(exc)
            except StopIteration:
                return
        else:
            try:
                pending = coroutine.send(value)
            except StopIteration:
                return


def event_id(ns: int) -> str:
    """A reading's time as the SSE `id:` a reconnecting client sends back (Last-Event-ID)."""
    return ns_to_datetime(ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
