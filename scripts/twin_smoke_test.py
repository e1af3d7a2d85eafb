#!/usr/bin/env python3
"""End-to-end smoke test of a running OPTRIA IQ: token → assets → metrics → series → BlackBox.

Usage: python scripts/twin_smoke_test.py --base-url http://127.0.0.1:8000
       [--email demo@aramco.com --password optria-demo]
Exit status 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

SERIES_KEYS = {"asset_id", "metric", "unit", "source", "integration_type", "mode", "truncated",
               "points"}
POINT_KEYS = {"timestamp", "value", "unit", "quality"}


class SmokeFailure(Exception):
    pass


def expect_json(response: httpx.Response, step: str, keys: set[str]) -> dict[str, Any]:
    if response.status_code != 200:
        raise SmokeFailure(f"{step}: HTTP {response.status_code}: {response.text[:300]}")
    try:
        body = response.json()
    except ValueError:
        raise SmokeFailure(f"{step}: response is not JSON: {response.text[:300]}") from None
    missing = keys - set(body) if isinstance(body, dict) else keys
    if missing:
        raise SmokeFailure(f"{step}: missing keys {sorted(missing)}")
    return body


def run(base_url: str, email: str, password: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        token = expect_json(
            client.post("/api/auth/token", data={"username": email, "password": password}),
            "token", {"access_token", "token_type", "expires_in"},
        )
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        print(f"✓ token for {email} (expires in {token['expires_in']} s)")

        assets = expect_json(client.get("/api/twins/assets"), "assets", {"assets"})["assets"]
        if not assets:
            raise SmokeFailure("assets: the tenant has no assets")
        asset = assets[0]
        print(f"✓ {len(assets)} assets; first: {asset['code']} {asset['name']}")

        metrics = expect_json(
            client.get(f"/api/twins/assets/{asset['id']}/metrics"),
            "metrics", {"asset_id", "metrics", "details"},
        )
        if "vibration_rms" not in metrics["metrics"]:
            raise SmokeFailure(f"metrics: vibration_rms not mapped for {asset['code']}")
        print(f"✓ metrics of {asset['code']}: {', '.join(metrics['metrics'])}")

        series = expect_json(
            client.get(f"/api/twins/assets/{asset['id']}/metrics/vibration_rms/series"),
            "series", SERIES_KEYS,
        )
        points = series["points"]
        if not points:
            raise SmokeFailure("series: no points returned")
        for point in points:
            if set(point) != POINT_KEYS or not point["timestamp"].endswith("Z"):
                raise SmokeFailure(f"series: malformed point {point}")
        print(
            f"✓ series vibration_rms: {len(points)} points ({series['source']}, "
            f"{series['integration_type']}), {points[0]['timestamp']} → "
            f"{points[-1]['timestamp']}, last {points[-1]['value']} {series['unit']}"
        )

        events = expect_json(
            client.get("/api/blackbox/events", params={"category": "SENSOR", "limit": 5}),
            "blackbox", {"events"},
        )["events"]
        if not any(e["payload"].get("metric") == "vibration_rms" for e in events):
            raise SmokeFailure("blackbox: the series read left no SENSOR event")
        print(f"✓ BlackBox: {len(events)} recent SENSOR events, newest: {events[0]['summary']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--email", default="demo@aramco.com")
    parser.add_argument(
        "--password", default=os.environ.get("OPTRIA_DEMO_PASSWORD", "optria-demo")
    )
    args = parser.parse_args(argv)
    try:
        run(args.base_url.rstrip("/"), args.email, args.password)
    except SmokeFailure as failure:
        print(f"✗ {failure}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"✗ cannot reach {args.base_url}: {exc}", file=sys.stderr)
        return 1
    print("Smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
