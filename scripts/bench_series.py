#!/usr/bin/env python3
"""Benchmark the series endpoint against a bare FastAPI endpoint, in the same run.

Starts, on this machine only (loopback):
  * OPTRIA IQ on a fresh PostgreSQL database (demo tenant + mappings), one uvicorn worker;
  * a bare FastAPI app returning 100 points through a Pydantic model, no database.
Then drives both with the same load tool — wrk (Debian's `wrk`, 2 threads, 50 connections,
the default) or this script's own async client (`--tool python`, which tops out near 350
req/s and so under-reports a fast server) — and reports requests/s, p50 and p99, the
series/bare ratio (DESIGN.md §17: ≥ 0.5), and the HTTP time of a 1-year window with
mode=plot&limit=500 (≤ 100 ms p50).

Usage: python scripts/bench_series.py [--server-url postgresql+psycopg2://postgres@127.0.0.1/postgres]
       [--seconds 10] [--concurrency 50] [--tool wrk|python] [--workers 1] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = '''
from datetime import UTC, datetime, timedelta
from fastapi import FastAPI
from pydantic import BaseModel

class Point(BaseModel):
    timestamp: datetime
    value: float
    unit: str
    quality: str

class Series(BaseModel):
    points: list[Point]

app = FastAPI()

@app.get("/points", response_model=Series)
async def points() -> Series:
    start = datetime.now(UTC) - timedelta(minutes=100)
    return Series(points=[
        Point(timestamp=start + timedelta(minutes=i), value=i * 0.1, unit="mm/s", quality="good")
        for i in range(100)
    ])
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def drive_wrk(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> dict:
    """wrk's requests/s and latency percentiles (its --latency table) for one URL."""
    command = ["wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout

    def milliseconds(text_value: str) -> float:
        number = float(text_value.rstrip("usm"))
        unit = text_value[len(text_value.rstrip("usm")):]
        return number * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    found = {"errors": 0}
    for line in output.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            found["rps"] = float(parts[1])
        elif parts[:1] == ["50%"]:
            found["p50_ms"] = milliseconds(parts[1])
        elif parts[:1] == ["99%"]:
            found["p99_ms"] = milliseconds(parts[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            numbers = (part.strip(",") for part in parts)
            found["errors"] += sum(int(number) for number in numbers if number.isdigit())
    return found


async def drive(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(url)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--server-url",
        default=os.environ.get(
            "OPTRIA_TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--tool", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy (pip install py-spy) samples the app's process during the "
                             "series load into FILE, as collapsed stacks (one worker only)")
    args = parser.parse_args()

    def load(url: str, headers: dict[str, str], seconds: float) -> dict:
        if args.tool == "wrk":
            return drive_wrk(url, headers, seconds, args.concurrency)
        return asyncio.run(drive(url, headers, seconds, args.concurrency))

    name = f"optria_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(args.server_url).set(database=name).render_as_string(
        hide_password=False
    )
    env = {
        **os.environ,
        "OPTRIA_DATABASE_URL": database_url,
        "OPTRIA_SECRET_KEY": "bench-secret",
        "OPTRIA_DEMO_MODE": "false",
        "PYTHONPATH": str(ROOT),
    }
    python = sys.executable
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([python, "-m", "webapp.cli", "migrate"], env=env, check=True, cwd=ROOT)
        subprocess.run([python, "-m", "webapp.cli", "seed-demo"], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        app_port, bare_port = free_port(), free_port()
        bare_dir = ROOT / "var" / "bench"
        bare_dir.mkdir(parents=True, exist_ok=True)
        (bare_dir / "bare_app.py").write_text(BARE_APP)
        uvicorn = [python, "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]
        processes.append(subprocess.Popen(
            [*uvicorn, "--factory", "webapp.main:create_app", "--port", str(app_port),
             "--workers", str(args.workers)],
            env=env, cwd=ROOT,
        ))
        processes.append(subprocess.Popen(
            [*uvicorn, "bare_app:app", "--port", str(bare_port)], cwd=bare_dir,
        ))
        app_base, bare_base = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{bare_port}"
        wait_until_up(f"{app_base}/healthz")
        wait_until_up(f"{bare_base}/points")

        token = httpx.post(
            f"{app_base}/api/auth/token",
            data={"username": "demo@aramco.com", "password": env.get("OPTRIA_DEMO_PASSWORD",
                                                                    "optria-demo")},
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        asset_id = httpx.get(f"{app_base}/api/twins/assets", headers=auth).json()["assets"][0]["id"]
        series_url = (
            f"{app_base}/api/twins/assets/{asset_id}/metrics/vibration_rms/series?limit=100"
        )

        load(series_url, auth, 2)  # warm-up
        load(f"{bare_base}/points", {}, 2)
        bare = load(f"{bare_base}/points", {}, args.seconds)
        profiler = None
        if args.profile:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            profiler = subprocess.Popen([
                py_spy, "record", "--format", "raw", "--rate", "250",
                "--threads", "--nonblocking", "--duration", str(int(args.seconds)),
                "--output", args.profile, "--pid", str(processes[0].pid),
            ], stdout=subprocess.DEVNULL)
        series = load(series_url, auth, args.seconds)
        if profiler is not None:
            profiler.wait(timeout=args.seconds + 30)

        now = datetime.now(UTC)
        year_url = (
            f"{app_base}/api/twins/assets/{asset_id}/metrics/vibration_rms/series?mode=plot"
            f"&limit=500&from_time={(now - timedelta(days=365)).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
        year_times = []
        for _ in range(20):
            started = time.perf_counter()
            response = httpx.get(year_url, headers=auth, timeout=30)
            year_times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and len(response.json()["points"]) <= 500
        year_times.sort()

        print(f"load tool: {args.tool}, {args.concurrency} connections, {args.seconds:.0f} s; "
              f"app workers: {args.workers}")
        print(f"bare FastAPI (100 points, no DB): {bare['rps']:8.0f} req/s  "
              f"p50 {bare['p50_ms']:6.1f} ms  p99 {bare['p99_ms']:6.1f} ms")
        print(f"series endpoint (limit=100):      {series['rps']:8.0f} req/s  "
              f"p50 {series['p50_ms']:6.1f} ms  p99 {series['p99_ms']:6.1f} ms  "
              f"errors {series['errors']}")
        print(f"ratio series/bare: {series['rps'] / bare['rps']:.2f} (target >= 0.5)")
        print(f"1-year plot (limit=500): p50 {statistics.median(year_times):.1f} ms  "
              f"max {year_times[-1]:.1f} ms (target p50 <= 100 ms)")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
