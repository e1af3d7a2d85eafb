#!/usr/bin/env python3
"""Bytes per second an open panel costs (DESIGN.md §18: ≤ 1 KB/s on "Last 100" with the demo
source), and the overview's grid stream beside it.

The demo tenant on a fresh SQLite file, served in this process (FastAPI's TestClient); one
viewer logs in, opens a metric view's fragment stream and the overview's grid stream, and
reads each for `--seconds` at the stream interval. Reported per stream: bytes per second,
events by name, and the largest event. The fragment stream sends `latest` for every newer
reading and `chart` + `table` only when a new sample of the chart's own cadence is complete
(once a minute for the demo source), so run at least a few minutes for a fair average.

Usage: python scripts/bench_panel_bytes.py [--seconds 180] [--interval 2] [--range 100]
       [--no-grid]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from webapp.cli import migrate, seed_demo  # noqa: E402
from webapp.config import Settings  # noqa: E402
from webapp.main import create_app  # noqa: E402

DEMO_VIEWER = "viewer@aramco.com"


def measure(client: TestClient, url: str, seconds: float) -> tuple[int, Counter[str], int]:
    """(bytes, events by name, largest event) read from one SSE stream for `seconds`."""
    total, names, largest = 0, Counter[str](), 0
    deadline = time.monotonic() + seconds
    with client.stream("GET", url) as response:
        response.raise_for_status()
        event_bytes, name = 0, "message"
        for line in response.iter_lines():
            size = len(line.encode()) + 1
            total += size
            event_bytes += size
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line == "":
                if event_bytes > 1:
                    names[name] += 1
                    largest = max(largest, event_bytes)
                event_bytes, name = 0, "message"
                if time.monotonic() >= deadline:
                    break
    return total, names, largest


def report(label: str, seconds: float, result: tuple[int, Counter[str], int]) -> None:
    total, names, largest = result
    events = ", ".join(f"{name} {count}" for name, count in sorted(names.items()))
    print(f"{label:<28} {total / seconds / 1024:6.2f} KB/s   {total / 1024:8.1f} KB in "
          f"{seconds:.0f} s   largest event {largest / 1024:5.1f} KB   ({events})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--range", default="100", choices=("100", "24h", "7d"))
    parser.add_argument("--no-grid", action="store_true",
                        help="the panel alone (builds before the grid stream)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            database_url=f"sqlite:///{Path(directory) / 'bench.db'}", demo_mode=True,
            demo_password="bench-password", secret_key="bench", pi_base_url=None,
            stream_interval_seconds=args.interval, health_interval_seconds=3600.0,
        )
        migrate(settings)
        seed_demo(settings)
        with TestClient(create_app(settings)) as client:
            login = client.post("/login", data={"email": DEMO_VIEWER,
                                                "password": "bench-password"},
                                follow_redirects=False)
            assert login.status_code == 303, login.text
            asset_id = client.get("/api/twins/assets").json()["assets"][0]["id"]
            panel = (f"/twins/assets/{asset_id}/metrics/vibration_rms/stream"
                     f"?range={args.range}")
            results: dict[str, tuple[int, Counter[str], int]] = {}

            def run(name: str, url: str) -> None:
                results[name] = measure(client, url, args.seconds)

            streams = [(f"panel, range {args.range}", panel)]
            if not args.no_grid:
                streams.append(("overview grid", "/twins/stream"))
            threads = [threading.Thread(target=run, args=stream) for stream in streams]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    print(f"demo tenant, stream interval {args.interval:g} s, {args.seconds:.0f} s per stream")
    for name, result in results.items():
        report(name, args.seconds, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
