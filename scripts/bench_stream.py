#!/usr/bin/env python3
"""Benchmark live streaming: N concurrent SSE viewers of one metric on one server process.

The server (OPTRIA IQ, one uvicorn server on a fresh PostgreSQL database with the demo tenant)
runs in this process, so the hub's poll counter can be read directly; the viewers run in a
child process that opens N raw HTTP connections to the JSON point stream and timestamps every
event it receives. Reported: server memory per connection (RSS growth / N), p50/p99 delivery
lag (receive time − the reading's timestamp), whether every viewer got every point, and
connector polls per tick. Everything stays on 127.0.0.1.

Usage: python scripts/bench_stream.py [--viewers 5000] [--seconds 20] [--interval 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
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


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- viewer process -----------------------------------------------------------------------


async def viewer(port: int, path: str, token: str, stop_at: float, out: list) -> None:
    try:
        await watch_stream(port, path, token, stop_at, out)
    except (OSError, asyncio.IncompleteReadError) as exc:  # counted, never a silent stall
        out.append(("error", repr(exc)))


async def watch_stream(port: int, path: str, token: str, stop_at: float, out: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        out.append(("error", status.decode().strip()))
        writer.close()
        return
    out.append(("connected", None))
    try:
        while time.time() < stop_at:
            line = await asyncio.wait_for(reader.readline(), timeout=max(stop_at - time.time(),
                                                                         0.01))
            if not line:
                break
            if line.startswith(b"id: "):
                # The event id is the reading's timestamp; keep the client cheap (it shares
                # the two cores with the server) and parse it later.
                out.append(("point", (line[4:].strip().decode(), time.time())))
    except TimeoutError:
        pass
    finally:
        writer.close()


async def run_viewers(port: int, path: str, token: str, count: int, seconds: float) -> dict:
    per_viewer: list[list] = [[] for _ in range(count)]
    stop_at = time.time() + 3600  # replaced once everyone is connected
    tasks = []
    batch = 100
    for start in range(0, count, batch):  # ramp up: the server authenticates each opener
        for index in range(start, min(start + batch, count)):
            tasks.append(asyncio.create_task(
                viewer(port, path, token, stop_at, per_viewer[index])
            ))
        while sum(1 for events in per_viewer[: start + batch] if events) < min(start + batch,
                                                                                 count):
            await asyncio.sleep(0.05)
    print("connected", flush=True)
    measure_from = time.time()
    await asyncio.sleep(seconds)
    measure_to = time.time()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    lags, ids_per_viewer, errors = [], [], 0
    for events in per_viewer:
        ids = set()
        for kind, payload in events:
            if kind == "error":
                errors += 1
            elif kind == "point":
                stamp, received = payload
                lag = received - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                # Judge by when the reading was taken (not received), with a margin, so every
                # viewer is expected to hold exactly the same readings.
                taken_at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                if measure_from + 1 <= taken_at <= measure_to - 2:
                    lags.append(lag)
                    ids.add(stamp)
        ids_per_viewer.append(ids)
    every = set().union(*ids_per_viewer) if ids_per_viewer else set()
    complete = sum(1 for ids in ids_per_viewer if ids == every)
    lags.sort()
    return {
        "errors": errors,
        "points_in_window": len(every),
        "viewers_with_every_point": complete,
        "lag_p50_ms": statistics.median(lags) * 1000 if lags else None,
        "lag_p99_ms": lags[max(int(len(lags) * 0.99) - 1, 0)] * 1000 if lags else None,
        "deliveries": len(lags),
    }


def viewer_main(args: argparse.Namespace) -> int:
    raise_fd_limit()
    result = asyncio.run(
        run_viewers(args.port, args.path, args.token, args.viewers, args.seconds)
    )
    print(json.dumps(result), flush=True)
    return 0


# --- server (this process) ----------------------------------------------------------------


def server_main(args: argparse.Namespace) -> int:
    raise_fd_limit()
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
             "--token", token, "--viewers", str(args.viewers), "--seconds", str(args.seconds)],
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        ramp_started = time.time()
        assert child.stdout.readline().strip() == "connected"
        ramp = time.time() - ramp_started
        connected_rss = rss_kib(os.getpid())
        feeds = list(app.state.hub.feeds.values())
        polls_before, measured_from = sum(f.polls for f in feeds), time.time()
        result = json.loads(child.stdout.readline())
        polls = sum(f.polls for f in feeds) - polls_before
        ticks = (time.time() - measured_from) / args.interval
        child.wait()
        server.should_exit = True
        thread.join(timeout=30)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    per_connection_kib = (connected_rss - baseline) / args.viewers
    print(f"viewers: {args.viewers} (connected in {ramp:.1f} s), errors: {result['errors']}")
    print(f"server RSS: {baseline / 1024:.0f} MiB idle → {connected_rss / 1024:.0f} MiB "
          f"connected = {per_connection_kib:.1f} KiB per connection (target ≤ 60 KB)")
    print(f"delivery lag: p50 {result['lag_p50_ms']:.1f} ms, p99 {result['lag_p99_ms']:.1f} ms "
          f"over {result['deliveries']} deliveries (target p99 ≤ 250 ms)")
    print(f"points in window: {result['points_in_window']}; viewers that got every point: "
          f"{result['viewers_with_every_point']}/{args.viewers}")
    print(f"connector polls: {polls} in ~{ticks:.1f} ticks across {len(feeds)} feed(s) "
          f"= {polls / max(ticks, 1):.2f} per tick (target exactly 1)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
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
