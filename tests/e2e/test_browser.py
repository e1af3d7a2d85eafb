"""User journeys in real Chromium through the data-role hooks of DESIGN.md §7.

The demo tenant (ten assets on the demo connector) is served by uvicorn with a 0.5 s stream
interval; each test starts from a fresh browser context and logs in through the form.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import IN_CI
from tests.e2e.conftest import ARTIFACTS, STREAM_INTERVAL_SECONDS, LiveServer, log_in

try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:  # the dev extra is missing: skip, but never silently in CI
    if IN_CI:
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.e2e

DEMO_ADMIN = "demo@aramco.com"
# The language is remembered per user: the RTL journey uses its own user.
DEMO_ENGINEER = "engineer@aramco.com"
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
LIVE_TIMEOUT_MS = 10_000
PLOT_POINTS = 300  # the 24 h / 7 d chart budget (mode=plot)
STACK_TRACE_MARKERS = ("Traceback", 'File "', "webapp/", "sqlalchemy.", "Exception")

PANEL = "#twin-panel [data-role=asset-panel]"
METRIC_VIEW = "#metric-view [data-role=metric-view]"


# --- helpers -------------------------------------------------------------------------------


def card(page: Page, code: str) -> Locator:
    return page.locator("[data-role=asset-card]").filter(
        has=page.locator("[data-role=asset-code]", has_text=re.compile(rf"^{re.escape(code)}$"))
    )


def open_asset(page: Page, code: str) -> tuple[str, str]:
    """Click an asset card; waits for its panel. Returns (asset id, asset name)."""
    target = card(page, code)
    expect(target).to_have_count(1)
    asset_id = target.get_attribute("data-asset-id")
    name = target.locator("[data-role=asset-name]").inner_text().strip()
    assert asset_id and name
    target.click()
    expect(page.locator(PANEL)).to_have_attribute("data-asset-id", asset_id)
    return asset_id, name


def expect_chart(view: Locator) -> int:
    """A rendered chart with points and its min/max/last markers; returns data-points."""
    chart = view.locator("svg[data-role=chart]")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    for marker in ("chart-min", "chart-max", "chart-last"):
        expect(chart.locator(f"[data-role={marker}]")).to_have_count(1)
    return int(chart.get_attribute("data-points") or 0)


def focused_role(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement && document.activeElement.dataset.role")


def tab_until(page: Page, role: str, max_presses: int) -> None:
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        if focused_role(page) == role:
            return
    pytest.fail(f"{max_presses} Tab presses never focused a [data-role={role}] element")


def assert_no_stack_trace(text: str) -> None:
    for marker in STACK_TRACE_MARKERS:
        assert marker not in text, f"error text shows internals ({marker!r}): {text!r}"


# --- journeys ------------------------------------------------------------------------------


def test_login_lands_on_grid_with_live_card_values(page: Page, live_server: LiveServer) -> None:
    page.goto("/twins")
    # Not logged in: the login page, which remembers where the user was going.
    expect(page).to_have_url(re.compile(r"/login\?next=%2Ftwins$"))
    log_in(page, live_server, DEMO_ADMIN)
    expect(page).to_have_url(re.compile(r"/twins$"))

    cards = page.locator("#asset-grid [data-role=asset-card]")
    expect(cards).to_have_count(10)
    values = page.locator("[data-role=card-value]")
    expect(values.first).to_be_visible()
    assert values.count() >= cards.count(), "every card shows its latest values"
    for index in range(values.count()):
        value = values.nth(index)
        number = value.locator(".value").inner_text().strip()
        unit = value.locator(".unit").inner_text().strip()
        assert NUMBER.match(number), f"card value {index} is not a number: {number!r}"
        assert unit, f"card value {index} ({value.get_attribute('data-metric')}) has no unit"
    # The side panel is empty (and hidden) until an asset is chosen.
    expect(page.locator(PANEL)).to_have_count(0)


def test_card_opens_panel_with_first_metric_chart(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, DEMO_ADMIN)
    asset_id, name = open_asset(page, "C-301")

    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(panel.locator("[data-role=asset-name]")).to_contain_text(name)
    expect(panel.locator("[data-role=asset-type]")).to_have_text("Gas compressor")
    expect(page).to_have_url(re.compile(rf"/twins/assets/{asset_id}$"))
    expect(card(page, "C-301")).to_have_attribute("aria-current", "true")

    buttons = panel.locator("[data-role=metric-button]")
    expect(buttons).to_have_count(5)  # three common signals + power + shaft speed
    expect(buttons.first).to_have_text("Vibration RMS")  # human label, name in data-metric
    first_metric = buttons.first.get_attribute("data-metric")

    # The first metric loads by itself.
    view = page.locator(f"{METRIC_VIEW}[data-metric={first_metric}]")
    expect(view).to_be_visible()
    assert expect_chart(view) > 0
    expect(view.locator("[data-role=latest-value]")).to_have_text(NUMBER)
    expect(view.locator("[data-role=unit]")).not_to_be_empty()
    expect(buttons.first).to_have_attribute("aria-current", "true")


def test_metric_button_and_range_switch(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, DEMO_ADMIN)
    asset_id, _ = open_asset(page, "P-101")
    buttons = page.locator(f"{PANEL} [data-role=metric-button]")
    expect(page.locator(METRIC_VIEW)).to_have_attribute(
        "data-metric", buttons.first.get_attribute("data-metric") or ""
    )

    other = buttons.nth(1)
    metric = other.get_attribute("data-metric")
    other.click()
    view = page.locator(f"{METRIC_VIEW}[data-metric={metric}]")
    expect(view).to_be_visible()
    expect(view).to_have_attribute("data-range", "100")
    expect(page).to_have_url(re.compile(rf"/twins/assets/{asset_id}/metrics/{metric}$"))
    expect(other).to_have_attribute("aria-current", "true")
    expect(buttons.first).not_to_have_attribute("aria-current", "true")
    assert 0 < expect_chart(view) <= 100

    with page.expect_response(
        lambda response: "range=24h" in response.url and "/stream" not in response.url
    ) as answer:
        view.locator("[data-role=range-switch] [data-range='24h']").click()
    expect(view).to_have_attribute("data-range", "24h")
    expect(page).to_have_url(re.compile(rf"/metrics/{metric}\?range=24h$"))
    expect(view.locator("svg[data-role=chart] > title")).to_have_attribute(
        "id", re.compile(r"-24h$")
    )
    expect_chart(view)
    # The chart the click rendered (the live stream may already have replaced it).
    rendered = re.search(r'data-role="chart" data-points="(\d+)"', answer.value.text())
    assert rendered, "the 24 h answer carries the chart"
    assert 0 < int(rendered.group(1)) <= PLOT_POINTS, f"24 h is a plot: {rendered.group(1)}"
    expect(view.locator("[data-role=range-switch] [data-range='24h']")).to_have_attribute(
        "aria-current", "true"
    )


def test_live_24h_chart_stays_within_plot_budget(page: Page, live_server: LiveServer) -> None:
    """Live ticks append to the shared 24 h chart; it is re-downsampled to stay a plot."""
    log_in(page, live_server, DEMO_ADMIN)
    asset_id, _ = open_asset(page, "P-201")
    page.goto(f"/twins/assets/{asset_id}/metrics/temperature?range=24h")
    view = page.locator(f"{METRIC_VIEW}[data-metric=temperature]")
    expect(view).to_have_attribute("data-range", "24h")
    moment = view.locator("[data-role=latest-time]")
    first_time = moment.get_attribute("datetime") or ""
    # Wait for live ticks (each brings a `latest` and a `chart` event).
    expect(view.locator("[data-role=live-status]")).to_have_attribute(
        "data-state", "live", timeout=LIVE_TIMEOUT_MS
    )
    expect(moment).not_to_have_attribute("datetime", first_time, timeout=LIVE_TIMEOUT_MS)
    points = expect_chart(view)
    assert points <= PLOT_POINTS, f"the live 24 h chart shows {points} points"


def test_latest_value_updates_live(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, DEMO_ADMIN)
    open_asset(page, "GT-501")
    view = page.locator(METRIC_VIEW)
    expect_chart(view)
    status = view.locator("[data-role=live-status]")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)
    expect(status).to_have_text("Live")

    value = view.locator("[data-role=latest-value]")
    moment = view.locator("[data-role=latest-time]")
    expect(moment).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    first_time = moment.get_attribute("datetime") or ""
    first_time_text = moment.inner_text()
    old_value = value.element_handle()
    old_chart = view.locator("svg[data-role=chart]").element_handle()
    live_element = view.locator("[sse-connect]").element_handle()

    # New readings arrive every stream interval, without any action from the user: the time
    # moves on and the value is re-rendered by the stream. (The demo signals are smooth, so
    # the value's digits may legitimately stay the same for a few seconds.) The chart draws
    # one-minute samples: it is re-sent only when the next one is complete (§18).
    expect(moment).not_to_have_attribute("datetime", first_time, timeout=LIVE_TIMEOUT_MS)
    expect(moment).not_to_have_text(first_time_text, timeout=LIVE_TIMEOUT_MS)
    page.wait_for_function("element => !element.isConnected", arg=old_value)
    assert old_chart is not None
    expect(value).to_have_text(NUMBER)
    expect(view.locator("[data-role=unit]")).not_to_be_empty()
    assert expect_chart(view) == 100
    # Swaps replace the sse-swap children only: the connection element stays in place.
    assert live_element.evaluate("element => element.isConnected")
    expect(view.locator("[sse-connect]")).to_have_attribute(
        "data-interval-ms", str(int(STREAM_INTERVAL_SECONDS * 1000))
    )
    expect(status).to_have_attribute("data-state", "live")


def test_back_button_and_escape_close_the_panel(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, DEMO_ADMIN)
    panel_slot = page.locator("#twin-panel")
    asset_id, _ = open_asset(page, "E-401")
    expect(page).to_have_url(re.compile(rf"/twins/assets/{asset_id}$"))
    expect_chart(page.locator(METRIC_VIEW))

    page.go_back()
    expect(page).to_have_url(re.compile(r"/twins$"))
    expect(page.locator(PANEL)).to_have_count(0)
    expect(panel_slot).to_be_hidden()  # an empty panel takes no room
    expect(page.locator("#asset-grid [data-role=asset-card]")).to_have_count(10)

    # Forward again, then Escape closes it like the close button.
    target = card(page, "V-601")
    open_asset(page, "V-601")
    expect(page.locator(PANEL)).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(PANEL)).to_have_count(0)
    expect(panel_slot).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/twins$"))
    expect(target).not_to_have_attribute("aria-current", "true")
    expect(target).to_be_focused()  # focus returns to the card that opened the panel


def _panel_and_grid_x(page: Page) -> tuple[float, float]:
    panel_box = page.locator(PANEL).bounding_box()
    grid_box = page.locator("#asset-grid").bounding_box()
    assert panel_box and grid_box
    return panel_box["x"], grid_box["x"]


def test_arabic_mirrors_the_layout(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, DEMO_ENGINEER)
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "en")
    expect(html).to_have_attribute("dir", "ltr")
    open_asset(page, "P-102")
    panel_x, grid_x = _panel_and_grid_x(page)
    assert panel_x > grid_x, f"English: the panel is on the right ({panel_x=} {grid_x=})"

    try:
        page.get_by_role("link", name="العربية").click()
        expect(html).to_have_attribute("lang", "ar")
        expect(html).to_have_attribute("dir", "rtl")
        expect(page.locator("#twin-title")).not_to_have_text("Digital Twin")
        open_asset(page, "P-102")
        expect(page.locator(METRIC_VIEW)).to_be_visible()
        panel_x, grid_x = _panel_and_grid_x(page)
        assert panel_x < grid_x, f"Arabic: the panel is on the left ({panel_x=} {grid_x=})"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "test_arabic_mirrors_the_layout-rtl.png"))
    finally:
        # The choice is remembered for the user: leave it as the other journeys expect it.
        page.goto("/twins?lang=en")
    expect(html).to_have_attribute("dir", "ltr")


def test_keyboard_only(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, DEMO_ADMIN)
    page.goto("/twins")  # a fresh page: focus starts at the document
    tab_until(page, "asset-card", max_presses=30)
    asset_id = page.evaluate("() => document.activeElement.dataset.assetId")
    # Keyboard focus is visible (DESIGN.md §13).
    expect(page.locator(":focus")).to_have_css("outline-style", "solid")

    page.keyboard.press("Enter")
    expect(page.locator(PANEL)).to_have_attribute("data-asset-id", asset_id)
    # The panel takes focus on its title, so the next Tab stays inside it.
    expect(page.locator(f"{PANEL} [data-role=asset-name]")).to_be_focused()
    expect(page.locator(METRIC_VIEW)).to_be_visible()

    tab_until(page, "metric-button", max_presses=10)
    page.keyboard.press("Tab")
    assert focused_role(page) == "metric-button", "the next signal is one Tab away"
    metric = page.evaluate("() => document.activeElement.dataset.metric")
    page.keyboard.press("Enter")
    expect(page.locator(f"{METRIC_VIEW}[data-metric={metric}]")).to_be_visible()


def test_errors_stay_readable_in_the_panel(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, DEMO_ADMIN)
    asset_id = card(page, "C-302").get_attribute("data-asset-id")

    # A deep link to a metric the asset does not have: the full page, error inside the panel.
    response = page.goto(f"/twins/assets/{asset_id}/metrics/no_such_metric")
    assert response is not None and response.status == 404
    panel = page.locator(PANEL)
    expect(panel).to_have_attribute("data-asset-id", asset_id or "")
    error = panel.locator("#metric-view [data-role=error-message]")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-status", "404")
    expect(error).to_contain_text("Not found")
    expect(error.locator("[data-role=error-detail]")).to_contain_text("no_such_metric")
    assert_no_stack_trace(page.locator("body").inner_text())
    # The rest of the panel still works: a real metric replaces the message.
    panel.locator("[data-role=metric-button]").first.click()
    expect_chart(page.locator(METRIC_VIEW))
    expect(error).to_have_count(0)

    # The same through an htmx swap (htmx-config swaps 4xx into the target).
    page.evaluate(
        "url => htmx.ajax('GET', url, {target: '#metric-view', swap: 'innerHTML'})",
        f"/twins/assets/{asset_id}/metrics/no_such_metric",
    )
    expect(error).to_have_attribute("data-status", "404")
    expect(page.locator(METRIC_VIEW)).to_have_count(0)
    assert_no_stack_trace(panel.inner_text())

    # An asset that does not exist (or belongs to another tenant): the message fills the panel.
    page.evaluate(
        "url => htmx.ajax('GET', url, {target: '#twin-panel', swap: 'innerHTML'})",
        "/twins/assets/2000000000",
    )
    message = page.locator("#twin-panel > [data-role=error-message]")
    expect(message).to_be_visible()
    expect(message).to_have_attribute("data-status", "404")
    expect(message).to_contain_text("Not found")
    assert_no_stack_trace(page.locator("#twin-panel").inner_text())
