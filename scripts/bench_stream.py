#!/usr/bin/env python3
"""Benchmark live streaming: N concurrent SSE viewers of one metric on one server process.

The server (OPTRIA IQ, one uvicorn server on a fresh PostgreSQL database with the demo tenant)
runs in this process, so the hub's poll counter can be read directly; the viewers run in a
child process that opens N raw HTTP connections to the JSON point stream. Reported: server
memory per connection (RSS growth / N); p50/p99 delivery lag, from the reading's timestamp to
the kernel's receive timestamp of the bytes carrying it in the viewer's socket (what a viewer on
another host would see, less the network), and also to when the client process read them;
whether every viewer got every point; how long each tick's fan-out took; the server's garbage
collection pauses; connector polls per tick. Everything stays on 127.0.0.1; by default the
server and the viewers run on separate halves of the cores, as they would on separate hosts.

Usage: python scripts/bench_stream.py [--viewers 5000] [--seconds 20] [--interval 2]
       [--server-cpus 0] [--viewer-cpus 1]   (pass '' to let the scheduler choose)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin_to(cpus: str) -> None:
    """Keep the server and the viewers off each other's cores, as if on separate hosts."""
    if cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- viewer process -----------------------------------------------------------------------
#
# One epoll loop over raw sockets, not asyncio streams: the viewers share the two cores with the
# server, so they must cost as little as possible. Each socket asks the kernel for receive
# timestamps (SO_TIMESTAMPNS), which say when the bytes reached the viewer's socket, i.e. when
# the server delivered them, however late this process gets round to reading them. The time
# this process read them is reported too ("read by the client").

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ANCILLARY_SPACE = socket.CMSG_SPACE(16)


class Viewer:
    __slots__ = ("buffer", "error", "points", "sock", "status")

    def __init__(self, port: int, request: bytes) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(request)
        self.sock.setblocking(False)
        self.buffer = b""
        self.status: bytes | None = None
        self.points: list[tuple[str, float, float]] = []  # (event id, delivered, read)
        self.error: str | None = None

    def receive(self) -> bool:
        """Read what is there; False once the connection is gone."""
        try:
            data, ancillary, _flags, _address = self.sock.recvmsg(1 << 16, ANCILLARY_SPACE)
        except BlockingIOError:
            return True
        except OSError as exc:
            self.error = repr(exc)
            return False
        if not data:
            self.error = self.error or "closed by the server"
            return False
        read_at = time.time()
        delivered_at = read_at
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", payload[:16])
                delivered_at = seconds + nanoseconds / 1e9
        self.buffer += data
        if self.status is None:
            if b"\r\n" not in self.buffer:
                return True
            self.status, _, self.buffer = self.buffer.partition(b"\r\n")
            if b" 200 " not in self.status:
                self.error = self.status.decode()
                return False
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"id: "):  # the event id is the reading's timestamp
                self.points.append((line[4:].strip().decode(), delivered_at, read_at))
        return True


def run_viewers(port: int, path: str, token: str, count: int, seconds: float) -> dict:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    selector = selectors.EpollSelector()
    viewers: list[Viewer] = []
    open_viewers = 0

    def pump(timeout: float) -> None:
        nonlocal open_viewers
        for key, _events in selector.select(timeout):
            viewer = key.data
            if not viewer.receive():
                selector.unregister(viewer.sock)
                open_viewers -= 1

    batch = 100
    for start in range(0, count, batch):  # ramp up: the server authenticates each opener
        for _ in range(start, min(start + batch, count)):
            viewer = Viewer(port, request)
            viewers.append(viewer)
            selector.register(viewer.sock, selectors.EVENT_READ, viewer)
            open_viewers += 1
        while any(v.status is None and v.error is None for v in viewers[start:]):
            pump(0.05)
    print("connected", flush=True)
    measure_from = time.time()
    while time.time() < measure_from + seconds and open_viewers:
        pump(0.2)
    measure_to = time.time()
    for viewer in viewers:
        viewer.sock.close()

    delivered_lags, read_lags, ids_per_viewer = [], [], []
    for viewer in viewers:
        ids = set()
        for stamp, delivered_at, read_at in viewer.points:
            # Judge by when the reading was taken (not received), with a margin, so every
            # viewer is expected to hold exactly the same readings.
            taken_at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            if measure_from + 1 <= taken_at <= measure_to - 2:
                delivered_lags.append(delivered_at - taken_at)
                read_lags.append(read_at - taken_at)
                ids.add(stamp)
        ids_per_viewer.append(ids)
    every = set().union(*ids_per_viewer) if ids_per_viewer else set()

    def percentile(values: list[float], share: float) -> float | None:
        values.sort()
        return values[max(int(len(values) * share) - 1, 0)] * 1000 if values else None

    return {
        "errors": sum(1 for viewer in viewers if viewer.error),
        "first_error": next((viewer.error for viewer in viewers if viewer.error), None),
        "points_in_window": len(every),
        "viewers_with_every_point": sum(1 for ids in ids_per_viewer if ids == every),
        "lag_p50_ms": percentile(delivered_lags, 0.5),
        "lag_p99_ms": percentile(delivered_lags, 0.99),
        "lag_max_ms": percentile(delivered_lags, 1.0),
        "read_lag_p50_ms": percentile(read_lags, 0.5),
        "read_lag_p99_ms": percentile(read_lags, 0.99),
        "deliveries": len(delivered_lags),
    }


def viewer_main(args: argparse.Namespace) -> int:
    raise_fd_limit()
    pin_to(args.viewer_cpus)
    result = run_viewers(args.port, args.path, args.token, args.viewers, args.seconds)
    print(json.dumps(result), flush=True)
    return 0


# --- server (this process) ----------------------------------------------------------------


def server_main(args: argparse.Namespace) -> int:
    raise_fd_limit()
    pin_to(args.server_cpus)
    import uvicorn
    from sqlalchemy import create_engine, make_url, text

    from webapp.cli import migrate, seed_demo
    from webapp.config import Settings
    from webapp.main import create_app

    name = f"optria_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.server_url).set(database=name).render_as_string(hide_password=False)
    try:
        settings = Settings(
            database_url=url, secret_key="bench", demo_mode=False,
            stream_interval_seconds=args.interval,
            # One bench user holds every stream: lift the per-user cap (20 by default).
            streams_per_user=args.viewers,
        )
        migrate(settings)
        seed_demo(settings)
        app = create_app(settings)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                access_log=False, backlog=4096, timeout_keep_alive=600)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        while not server.started:
            time.sleep(0.1)
        token = httpx.post(f"{base}/api/auth/token", data={
            "username": "demo@aramco.com", "password": settings.demo_password,
        }).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        asset_id = httpx.get(f"{base}/api/twins/assets", headers=auth).json()["assets"][0]["id"]
        path = f"/api/twins/assets/{asset_id}/metrics/vibration_rms/stream"
        time.sleep(1)
        baseline = rss_kib(os.getpid())

        child = subprocess.Popen(
            [sys.executable, __file__, "--viewer", "--port", str(port), "--path", path,
             "--token", token, "--viewers", str(args.viewers), "--seconds", str(args.seconds),
             "--viewer-cpus", args.viewer_cpus],
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        ramp_started = time.time()
        assert child.stdout.readline().strip() == "connected"
        ramp = time.time() - ramp_started
        connected_rss = rss_kib(os.getpid())
        feeds = list(app.state.hub.feeds.values())
        polls_before, measured_from = sum(f.polls for f in feeds), time.time()
        for feed in feeds:
            feed.fan_outs.clear()
        gc_pauses: list[float] = []
        gc_started: list[float] = []

        def time_gc(phase: str, _info: dict) -> None:
            if phase == "start":
                gc_started.append(time.perf_counter())
            elif gc_started:
                gc_pauses.append(time.perf_counter() - gc_started.pop())

        gc.callbacks.append(time_gc)
        result = json.loads(child.stdout.readline())
        gc.callbacks.remove(time_gc)
        polls = sum(f.polls for f in feeds) - polls_before
        fan_outs = sorted(seconds for feed in feeds for _count, seconds in feed.fan_outs)
        ticks = (time.time() - measured_from) / args.interval
        child.wait()
        server.should_exit = True
        thread.join(timeout=30)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    per_connection_kib = (connected_rss - baseline) / args.viewers
    print(f"viewers: {args.viewers} (connected in {ramp:.1f} s), errors: {result['errors']}; "
          f"cores: server [{args.server_cpus or 'any'}], viewers [{args.viewer_cpus or 'any'}]")
    print(f"server RSS: {baseline / 1024:.0f} MiB idle → {connected_rss / 1024:.0f} MiB "
          f"connected = {per_connection_kib:.1f} KiB per connection (target ≤ 60 KB)")
    if result["first_error"]:
        print(f"first error: {result['first_error']}")
    print(f"delivery lag (reading taken → bytes in the viewer's socket): "
          f"p50 {result['lag_p50_ms']:.1f} ms, p99 {result['lag_p99_ms']:.1f} ms, "
          f"max {result['lag_max_ms']:.1f} ms over {result['deliveries']} deliveries "
          f"(target p99 ≤ 250 ms)")
    print(f"read by the viewer process: p50 {result['read_lag_p50_ms']:.1f} ms, "
          f"p99 {result['read_lag_p99_ms']:.1f} ms")
    print(f"points in window: {result['points_in_window']}; viewers that got every point: "
          f"{result['viewers_with_every_point']}/{args.viewers}")
    if fan_outs:
        print(f"fan-out per tick (first to last viewer written): median "
              f"{statistics.median(fan_outs) * 1000:.1f} ms, max {fan_outs[-1] * 1000:.1f} ms")
    longest_gc = max(gc_pauses, default=0) * 1000
    print(f"garbage collection in the server while measuring: {len(gc_pauses)} runs, "
          f"{sum(gc_pauses) * 1000:.1f} ms in all, longest {longest_gc:.1f} ms")
    # The alarm scanner reads every mapped tag through its feed too: one poll per feed per tick
    # serves all of them, whatever the viewer count.
    per_feed = polls / max(ticks, 1) / max(len(feeds), 1)
    print(f"connector polls: {polls} in ~{ticks:.1f} ticks across {len(feeds)} feed(s) "
          f"= {per_feed:.2f} per feed per tick (target 1)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    halves = sorted(os.sched_getaffinity(0))
    parser.add_argument("--server-cpus", default=",".join(map(str, halves[: len(halves) // 2])),
                        help="cores for the server (default: the first half; '' = any)")
    parser.add_argument("--viewer-cpus", default=",".join(map(str, halves[len(halves) // 2:])),
                        help="cores for the viewers (default: the second half; '' = any)")
    parser.add_argument("--server-url", default=os.environ.get(
        "OPTRIA_TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--viewer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return viewer_main(args) if args.viewer else server_main(args)


if __name__ == "__main__":
    sys.exit(main())
