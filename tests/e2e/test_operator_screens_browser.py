"""Operator screens in real Chromium (DESIGN.md §18): the custom window from its form, every
screen at a tablet's 1024 px and a control room's 1920 px (no sideways scrolling, chart
labels big enough to read; screenshots in test-artifacts/e2e/), and the chart's Arabic time
axis inside its plot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import IN_CI
from tests.e2e.conftest import ARTIFACTS, LiveServer, log_in

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the dev extra is missing: skip, but never silently in CI
    if IN_CI:
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

DEMO_VIEWER = "viewer@aramco.com"
PLANT_ZONE = "Asia/Riyadh"  # the demo tenant's
# Chart text at its rendered size: below this an operator at arm's length cannot read it.
MIN_LABEL_PX = 10.0


def open_first_metric(page: Page) -> None:
    page.locator("[data-role=asset-card]").first.click()
    chart = page.locator("#metric-view [data-role=metric-view] svg[data-role=chart]")
    expect(chart).to_be_visible()


def test_an_operator_picks_a_custom_window_in_plant_time_and_goes_back_to_live(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server, DEMO_VIEWER)
    open_first_metric(page)
    view = page.locator("#metric-view [data-role=metric-view]")
    expect(view.locator("[data-role=live-status]")).to_have_attribute("data-state", "live")

    view.locator("[data-role=custom-range] summary").click()
    form = view.locator("[data-role=custom-range-form]")
    expect(form).to_be_visible()
    plant_now = datetime.now(ZoneInfo(PLANT_ZONE)).replace(second=0, microsecond=0)
    start, end = plant_now - timedelta(hours=6), plant_now - timedelta(hours=2)
    form.locator("[data-role=custom-from]").fill(start.strftime("%Y-%m-%dT%H:%M"))
    form.locator("[data-role=custom-to]").fill(end.strftime("%Y-%m-%dT%H:%M"))
    form.locator("[data-role=custom-range-show]").click()

    custom = page.locator("#metric-view [data-role=metric-view][data-range='custom']")
    expect(custom).to_be_visible()
    expect(custom.locator("[data-role=live-status]")).to_have_attribute("data-state", "not-live")
    assert custom.locator("[sse-connect]").count() == 0
    query = parse_qs(urlparse(page.url).query)
    assert query["range"] == ["custom"] and query["tz"] == [PLANT_ZONE]
    assert query["from_time"] == [start.strftime("%Y-%m-%dT%H:%M")]
    # The chart spans the window asked for: its table's oldest and newest rows lie inside it.
    times = custom.locator("[data-role=chart-table] time").evaluate_all(
        "nodes => nodes.map(node => node.getAttribute('datetime'))"
    )
    assert len(times) > 10
    moments = sorted(datetime.fromisoformat(value.replace("Z", "+00:00")) for value in times)
    assert start - timedelta(minutes=1) <= moments[0] and moments[-1] <= end + timedelta(minutes=1)
    # The form keeps what was typed; focus stays on the custom control.
    expect(custom.locator("[data-role=custom-from]")).to_have_value(start.strftime("%Y-%m-%dT%H:%M"))
    expect(custom.locator("[data-role=range-switch] [data-range='custom']").first).to_be_focused()

    custom.locator("[data-role=range-switch] a[data-range='100']").click()
    live = page.locator("#metric-view [data-role=metric-view][data-range='100']")
    expect(live.locator("[data-role=live-status]")).to_have_attribute("data-state", "live")


def test_a_bad_custom_window_says_what_was_wrong_and_leads_back(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server, DEMO_VIEWER)
    open_first_metric(page)
    view = page.locator("#metric-view [data-role=metric-view]")
    view.locator("[data-role=custom-range] summary").click()
    form = view.locator("[data-role=custom-range-form]")
    form.locator("[data-role=custom-from]").fill("2026-11-02T10:00")
    form.locator("[data-role=custom-to]").fill("2026-11-01T10:00")
    form.locator("[data-role=custom-range-show]").click()

    error = page.locator("#metric-view [data-role=error-message][data-status='422']")
    expect(error).to_be_visible()
    expect(error.locator("[data-role=error-detail]")).to_contain_text("from_time")
    error.locator("[data-role=error-back]").click()
    expect(page.locator("#metric-view [data-role=metric-view][data-range='100']")).to_be_visible()


SCREENS = {
    "twins-panel": None,  # the overview with an asset and its metric open
    "trends": "/trends?pen={asset_id}:vibration_rms&pen={asset_id}:temperature&compare=1d",
    "alarms": "/alarms",
    "logbook": "/logbook",
    "blackbox": "/blackbox",
}


@pytest.mark.parametrize("width", [1024, 1920])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_screen_fits_and_its_chart_labels_are_readable(
    page: Page, live_server: LiveServer, screen: str, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server, DEMO_VIEWER)
    asset_id = page.locator("[data-role=asset-card]").first.get_attribute("data-asset-id")
    path = SCREENS[screen]
    if path is None:
        open_first_metric(page)
    else:
        page.goto(path.format(asset_id=asset_id))
        expect(page.locator("main")).to_be_visible()
    page.wait_for_load_state("networkidle")

    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{screen} scrolls sideways by {overflow} px at {width} px"
    # The rendered font size: the SVG's font size in its units times their scale on screen.
    heights = page.locator("svg [data-role=axis-label]").evaluate_all(
        "nodes => nodes.filter(node => node.textContent.trim())"
        ".map(node => parseFloat(getComputedStyle(node).fontSize) * node.getScreenCTM().a)"
    )
    if screen in ("twins-panel", "trends"):
        assert heights, f"{screen} has a chart"
    if heights:
        assert min(heights) >= MIN_LABEL_PX, f"{screen} at {width} px: labels {min(heights)} px"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"screen-{screen}-{width}.png"))


def test_the_arabic_time_axis_stays_inside_the_chart(page: Page, live_server: LiveServer) -> None:
    """Right-to-left labels are anchored at their ticks: none runs off the plot's sides."""
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, DEMO_VIEWER, lang="ar")
    page.locator("[data-role=asset-card]").first.click()
    view = page.locator("#metric-view [data-role=metric-view]")
    view.locator("[data-role=range-switch] a[data-range='24h']").click()
    chart = page.locator(
        "#metric-view [data-role=metric-view][data-range='24h'] svg[data-role=chart]"
    )
    expect(chart).to_be_visible()
    # Read in one go: a live `chart` event may replace the drawing between two reads.
    box, labels = chart.evaluate("""svg => [svg.getBoundingClientRect().toJSON(),
        [...svg.querySelectorAll('[data-axis=time]')]
            .map(n => n.getBoundingClientRect().toJSON())]""")
    assert len(labels) == 3
    for label in labels:
        assert box["left"] - 1 <= label["left"] and label["right"] <= box["right"] + 1, (box, label)
    lefts = [label["left"] for label in labels]
    assert lefts == sorted(lefts), "time runs left to right in every language"
    page.locator("#metric-view .chart-slot").screenshot(
        path=str(ARTIFACTS / "metric-chart-arabic-24h.png")
    )
