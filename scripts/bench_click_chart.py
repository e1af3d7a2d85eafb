#!/usr/bin/env python3
"""Click → chart in real Chromium (DESIGN.md §18, issue P8: keep ≤ 150 ms).

The demo tenant on a fresh SQLite file (or PostgreSQL with --database-url), served by uvicorn
in this process; headless Chromium (/usr/bin/chromium) logs in as the demo viewer, opens an
asset, then clicks each metric button and each range in turn. Measured in the page: from the
click (performance.now() in a capturing listener) to the new chart being in the document (a
MutationObserver), so it includes the request, the server's read and render, the swap and
htmx's processing — what the operator waits for. Prints p50, p95 and max per action.

Usage: python scripts/bench_click_chart.py [--rounds 20] [--width 1366]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from webapp.cli import migrate, seed_demo  # noqa: E402
from webapp.config import Settings  # noqa: E402
from webapp.main import create_app  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
DEMO_VIEWER = "viewer@aramco.com"

# Arms window.nextSwap: a promise of the milliseconds from the next click to the moment a
# metric view matching `selector` (with its chart) is in the document. (Kept on the window:
# Playwright would wait for a returned promise before the click that resolves it.)
TIME_NEXT_SWAP = """selector => { window.nextSwap = new Promise(resolve => {
  let clicked = null;
  document.addEventListener('click', () => { clicked = performance.now(); },
                            { capture: true, once: true });
  const observer = new MutationObserver(() => {
    if (clicked !== null && document.querySelector(selector)) {
      observer.disconnect();
      resolve(performance.now() - clicked);
    }
  });
  observer.observe(document.body, { childList: true, subtree: true });
}); }"""


def serve(settings: Settings) -> tuple[uvicorn.Server, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def timed_click(page, click_selector: str, done_selector: str) -> float:  # type: ignore[no-untyped-def]
    page.evaluate(TIME_NEXT_SWAP, done_selector)
    page.locator(click_selector).click()
    return float(page.evaluate("() => window.nextSwap"))


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"{name:<28} n={len(ordered):<4} p50 {statistics.median(ordered):6.1f} ms   "
          f"p95 {p95:6.1f} ms   max {ordered[-1]:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite:///{Path(directory) / 'bench.db'}"
        settings = Settings(database_url=url, demo_mode=True, pi_base_url=None,
                            pi_data_server=None)
        migrate(settings)
        seed_demo(settings)
        server, base = serve(settings)
        samples: dict[str, list[float]] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(base_url=base,
                                    viewport={"width": args.width, "height": 900})
            page.goto("/login")
            page.fill("input[name=email]", DEMO_VIEWER)
            page.fill("input[name=password]", settings.demo_password)
            page.click("form[action^='/login'] button[type=submit]")
            page.wait_for_url("**/twins*")
            page.locator("[data-role=asset-card]").first.click()
            page.wait_for_selector("#metric-view [data-role=metric-view] svg[data-role=chart]")
            metrics = page.locator("#twin-panel [data-role=metric-button]").evaluate_all(
                "buttons => buttons.map(button => button.dataset.metric)"
            )
            for _ in range(args.rounds):
                for metric in [*metrics[1:], metrics[0]]:
                    samples.setdefault("metric button → chart", []).append(timed_click(
                        page, f"#twin-panel [data-role=metric-button][data-metric='{metric}']",
                        f"#metric-view [data-role=metric-view][data-metric='{metric}'] "
                        "svg[data-role=chart]",
                    ))
                for chart_range in ("24h", "7d", "100"):
                    samples.setdefault(f"range {chart_range} → chart", []).append(timed_click(
                        page, f"#metric-view [data-role=range-switch] [data-range='{chart_range}']",
                        f"#metric-view [data-role=metric-view][data-range='{chart_range}'] "
                        "svg[data-role=chart]",
                    ))
            browser.close()
        server.should_exit = True
    print(f"Chromium at {args.width} px, demo source, {args.rounds} rounds")
    for name, values in samples.items():
        report(name, values)


if __name__ == "__main__":
    main()
