"""A small PI Web API look-alike served by uvicorn on 127.0.0.1 for connector tests.

It answers the documented JSON of the endpoints the connector uses (points?path=, dataservers,
streams/{webId}/recorded | plot | value), including newest-first answers when startTime is after
endTime, the per-call maxCount cap, {"Errors": [...]} bodies, Basic auth (401), digital-state
values and 7-digit fractional timestamps. Two extra mounts misbehave on purpose:
`/slow/piwebapi` sleeps past any client timeout and `/garbage/piwebapi` answers HTML.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

USERNAME, PASSWORD = "pi-reader", "s3cret"
DATA_SERVER = "PISRV01"


@dataclass
class FakePoint:
    name: str
    web_id: str
    items: list[dict[str, Any]]  # ascending, exactly as PI would serialise them
    ns: np.ndarray = field(init=False)  # item timestamps as int64 ns, for range filtering

    def __post_init__(self) -> None:
        self.ns = np.array([parse_time(i["Timestamp"]) for i in self.items], dtype=np.int64)


def parse_time(text: str) -> int:
    return int(np.datetime64(text.rstrip("Z"), "ns").astype(np.int64))


def pi_timestamp(ns: int, digits: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    text = str(np.datetime64(seconds, "s"))
    return f"{text}.{frac:09d}"[: len(text) + 1 + digits] + "Z" if digits else text + "Z"


def _errors(status: int, *messages: str) -> JSONResponse:
    return JSONResponse({"Errors": list(messages)}, status_code=status)


class FakePIServer:
    """State + Starlette app + a uvicorn thread."""

    def __init__(self, points: list[FakePoint], *, max_count_cap: int = 150_000) -> None:
        self.points = {p.name: p for p in points}
        self.by_web_id = {p.web_id: p for p in points}
        self.max_count_cap = max_count_cap
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, query) of good requests
        self.slow_seconds = 10.0
        routes = [
            Route("/piwebapi/", self.root),
            Route("/piwebapi/dataservers", self.dataservers),
            Route("/piwebapi/points", self.point_by_path),
            Route("/piwebapi/streams/{web_id}/recorded", self.recorded),
            Route("/piwebapi/streams/{web_id}/plot", self.plot),
            Route("/piwebapi/streams/{web_id}/value", self.value),
            Route("/slow/piwebapi/{rest:path}", self.slow),
            Route("/garbage/piwebapi/{rest:path}", self.garbage),
        ]
        self.app = Starlette(routes=routes)
        self.port = _free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/piwebapi"

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}/piwebapi"

    def start(self) -> FakePIServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake PI Web API did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    # --- helpers -----------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def _guard(self, request: Request) -> Response | None:
        if not self._authorised(request):
            # Like IIS in front of PI: a bare 401 with a challenge and no JSON body.
            return Response(
                status_code=401, headers={"WWW-Authenticate": 'Basic realm="PI Web API"'}
            )
        self.requests.append((request.url.path, dict(request.query_params)))
        return None

    def _stream_point(self, request: Request) -> FakePoint | Response:
        point = self.by_web_id.get(request.path_params["web_id"])
        if point is None:
            return _errors(404, "Unknown or invalid WebID format.")
        return point

    # --- endpoints ---------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return self._guard(request) or JSONResponse(
            {"Links": {"Self": str(request.url), "DataServers": f"{self.base_url}/dataservers"}}
        )

    async def dataservers(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        path = request.query_params.get("path", "")
        if path.lstrip("\\").upper() != DATA_SERVER:
            return _errors(404, f"PI Data Archive '{path}' not found.")
        return JSONResponse({"WebId": "F1DSfake", "Name": DATA_SERVER, "IsConnected": True})

    async def point_by_path(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        path = request.query_params.get("path", "")
        prefix = f"\\\\{DATA_SERVER}\\"
        point = self.points.get(path[len(prefix) :]) if path.startswith(prefix) else None
        if point is None:
            return _errors(404, f"PI Point not found '{path}'.")
        return JSONResponse({"WebId": point.web_id, "Name": point.name, "PointType": "Float64"})

    async def recorded(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        point = self._stream_point(request)
        if isinstance(point, Response):
            return point
        query = request.query_params
        max_count = int(query.get("maxCount", "1000"))
        if max_count > self.max_count_cap:
            return _errors(
                400,
                f"The maximum count of {self.max_count_cap} values per call has been exceeded.",
            )
        start, end = parse_time(query["startTime"]), parse_time(query["endTime"])
        lo, hi = min(start, end), max(start, end)
        first = int(np.searchsorted(point.ns, lo, "left"))
        last = int(np.searchsorted(point.ns, hi, "right"))
        items = point.items[first:last]
        # PI walks from startTime toward endTime: newest first when startTime is later.
        items = items[::-1][:max_count] if start > end else items[:max_count]
        return JSONResponse({"Links": {}, "Items": items})

    async def plot(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        point = self._stream_point(request)
        if isinstance(point, Response):
            return point
        query = request.query_params
        start, end = parse_time(query["startTime"]), parse_time(query["endTime"])
        intervals = max(1, int(query.get("intervals", "24")))
        first = int(np.searchsorted(point.ns, start, "left"))
        last = int(np.searchsorted(point.ns, end, "right"))
        picked: set[int] = set()
        edges = np.linspace(start, end, intervals + 1)
        bucket = np.searchsorted(edges[1:-1], point.ns[first:last], "right")
        for b in np.unique(bucket):
            idx = first + np.flatnonzero(bucket == b)
            picked.update((int(idx[0]), int(idx[-1])))  # first and last of the interval
            numeric = [i for i in idx if isinstance(point.items[i]["Value"], float | int)]
            if numeric:  # and its extremes
                values = [point.items[i]["Value"] for i in numeric]
                picked.add(int(numeric[int(np.argmin(values))]))
                picked.add(int(numeric[int(np.argmax(values))]))
        return JSONResponse({"Links": {}, "Items": [point.items[i] for i in sorted(picked)]})

    async def value(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        point = self._stream_point(request)
        if isinstance(point, Response):
            return point
        if not point.items:  # PI answers a system digital state rather than nothing
            return JSONResponse(
                {
                    "Timestamp": "1970-01-01T00:00:00Z",
                    "Value": {"Name": "No Data", "Value": 248, "IsSystem": True},
                    "Good": False,
                    "Questionable": False,
                    "Substituted": False,
                }
            )
        return JSONResponse(point.items[-1])

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(self.slow_seconds)
        return JSONResponse({"Items": []})

    async def garbage(self, request: Request) -> Response:
        return HTMLResponse("<html><body><h1>IIS Windows Server</h1></body></html>")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
