"""The UI shell: vendored htmx only, CSP-safe markup, the twin grid/panel contract, RTL-safe CSS.

Pages are read with BeautifulSoup through the `data-role` hooks of DESIGN.md §7.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, browser_login, make_tenant_world
from tests.peers import add_integration, add_mapping

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
HTMX = re.compile(r"/static/vendor/htmx-2\.0\.\d+\.min\.js")
HTMX_SSE = re.compile(r"/static/vendor/htmx-ext-sse-2\.2\.\d+\.js")
MISSING_ID = 2_000_000_000
# Attributes whose value the browser (or htmx) fetches or navigates to.
URL_ATTRIBUTES = (
    "src",
    "href",
    "action",
    "formaction",
    "poster",
    "data",
    "srcset",
    "xlink:href",
    "hx-get",
    "hx-post",
    "hx-put",
    "hx-patch",
    "hx-delete",
    "sse-connect",
)
ABSOLUTE_URL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def soup_of(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.text, "html.parser")


@pytest.fixture
def viewer(client: TestClient, tenant_a: TenantWorld) -> str:
    """A browser session as tenant A's viewer; returns its CSRF token."""
    return browser_login(client, tenant_a.users["viewer"].email)


@pytest.fixture
def mapped_signals(session_factory: sessionmaker[Session], tenant_a: TenantWorld) -> list[str]:
    """Tenant A's first asset gets two demo signals; returns their metric names in order."""
    tenant_id, asset_id = tenant_a.tenant.id, tenant_a.assets[0].id
    integration_id = add_integration(
        session_factory, tenant_id, type="demo", name="Demo historian", config={}
    )
    metrics = [("vibration_rms", "mm/s"), ("temperature", "°C")]
    for metric, unit in metrics:
        add_mapping(
            session_factory,
            tenant_id,
            asset_id=asset_id,
            integration_id=integration_id,
            metric=metric,
            tag=f"PI:P-101.{metric.upper()}",
            unit=unit,
        )
    return [metric for metric, _unit in metrics]


@pytest.fixture
def rendered_pages(
    client: TestClient, tenant_a: TenantWorld, mapped_signals: list[str]
) -> dict[str, str]:
    """Every kind of screen, as served: anonymous login, the signed-in screens, error pages."""
    pages = {"/login": client.get("/login").text}
    browser_login(client, tenant_a.users["viewer"].email)
    asset_id = tenant_a.assets[0].id
    for url, status in (
        ("/twins", 200),
        (f"/twins/assets/{asset_id}", 200),
        ("/blackbox", 200),
        ("/blackbox?category=AUTH&severity=INFO", 200),
        (f"/twins/assets/{asset_id}/metrics/{mapped_signals[0]}?range=24h", 200),
        (f"/twins/assets/{MISSING_ID}", 404),
        ("/twins/assets/0", 422),
    ):
        response = client.get(url)
        assert response.status_code == status, url
        pages[url] = response.text
    fragment = client.get(f"/twins/assets/{asset_id}", headers={"HX-Request": "true"})
    pages["panel fragment"] = fragment.text
    metric = client.get(
        f"/twins/assets/{asset_id}/metrics/{mapped_signals[1]}", headers={"HX-Request": "true"}
    )
    pages["metric fragment"] = metric.text
    return pages


# --- what the base template loads --------------------------------------------------------


def test_pages_load_exactly_the_vendored_htmx_and_sse_extension(
    client: TestClient, viewer: str
) -> None:
    soup = soup_of(client.get("/twins"))
    sources = [script["src"] for script in soup.select("script[src]")]
    assert [src for src in sources if HTMX.fullmatch(src)] == sources[:1], "htmx first, once"
    assert len([src for src in sources if HTMX_SSE.fullmatch(src)]) == 1
    assert not [
        src
        for src in sources
        if "htmx" in src and not (HTMX.fullmatch(src) or HTMX_SSE.fullmatch(src))
    ]
    for src in sources:
        assert (ROOT / src.lstrip("/")).is_file(), src
        response = client.get(src)
        assert response.status_code == 200, src
        assert "javascript" in response.headers["content-type"]
    stylesheet = soup.select_one("link[rel=stylesheet]")
    assert stylesheet is not None and client.get(stylesheet["href"]).status_code == 200
    icon = soup.select_one("link[rel=icon]")
    assert icon is not None and client.get(icon["href"]).status_code == 200


def test_htmx_is_configured_for_the_csp_and_error_swaps(client: TestClient, viewer: str) -> None:
    meta = soup_of(client.get("/twins")).select_one("meta[name=htmx-config]")
    assert meta is not None
    config = json.loads(meta["content"])
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["historyRestoreAsHxRequest"] is False

    def swaps(status: int) -> bool:
        # htmx uses the first entry whose code pattern matches (an unanchored RegExp test).
        entry = next(e for e in config["responseHandling"] if re.search(e["code"], str(status)))
        return entry["swap"]

    assert all(swaps(status) for status in (200, 401, 403, 404, 422, 500, 503))
    assert not swaps(204)


def test_body_carries_the_csrf_token_for_htmx(client: TestClient, viewer: str) -> None:
    soup = soup_of(client.get("/twins"))
    headers = json.loads(soup.body["hx-headers"])
    assert headers["X-CSRF-Token"] == viewer
    logout = soup.select_one("form[action='/logout']")
    assert logout is not None and logout["method"] == "post"
    assert logout.select_one("input[name=csrf_token]")["value"] == viewer


def test_shell_has_navigation_language_switch_and_who(
    client: TestClient, viewer: str, tenant_a: TenantWorld
) -> None:
    soup = soup_of(client.get("/blackbox?category=ALARM"))
    nav = soup.select_one("nav.main-nav")
    assert [a["href"] for a in nav.select("a")] == [
        "/twins", "/alarms", "/trends", "/logbook", "/blackbox", "/docs"]
    assert nav.select_one("a[aria-current=page]")["href"] == "/blackbox"
    # The API reference opens beside the app, which stays where it was (§18).
    docs = nav.select_one("a[href='/docs']")
    assert (docs["target"], docs["rel"]) == ("_blank", ["noopener"])
    languages = {a["hreflang"]: a["href"] for a in soup.select(".lang-switch a")}
    # The switch keeps the page and its filters.
    assert languages == {
        "en": "/blackbox?category=ALARM&lang=en",
        "ar": "/blackbox?category=ALARM&lang=ar",
    }
    who = soup.select_one("[data-role=current-user]").get_text(" ", strip=True)
    assert tenant_a.tenant.name in who and tenant_a.users["viewer"].email in who
    assert soup.select_one("a.skip-link")["href"] == "#main"
    assert soup.select_one("main#main") is not None


# --- CSP-safe, air-gapped markup on every page -------------------------------------------


def test_no_inline_script_handlers_or_styles_on_any_page(rendered_pages: dict[str, str]) -> None:
    for url, html in rendered_pages.items():
        soup = BeautifulSoup(html, "html.parser")
        for script in soup.find_all("script"):
            assert script.get("src"), f"{url}: inline <script>"
            assert not script.get_text(strip=True), f"{url}: script with a body"
        assert not soup.find_all("style"), f"{url}: <style> element"
        for element in soup.find_all(True):
            for name, value in element.attrs.items():
                assert not name.lower().startswith("on"), f"{url}: {name}= on <{element.name}>"
                assert not name.lower().startswith(("hx-on", "data-hx-on")), f"{url}: {name}"
                assert name.lower() != "style", f"{url}: style= on <{element.name}>"
                text = " ".join(value) if isinstance(value, list) else str(value)
                assert not text.strip().lower().startswith("javascript:"), f"{url}: {name}"
                if name in ("hx-vals", "hx-headers", "hx-vars"):
                    assert not text.strip().startswith("js:"), f"{url}: {name} evaluates JS"


def test_no_external_host_anywhere(rendered_pages: dict[str, str]) -> None:
    for url, html in rendered_pages.items():
        soup = BeautifulSoup(html, "html.parser")
        for element in soup.find_all(True):
            for name in URL_ATTRIBUTES:
                value = element.get(name)
                if value and not str(value).startswith("#"):
                    assert not ABSOLUTE_URL.match(str(value)), f"{url}: {name}={value!r}"
        # Nothing else names a host either (SVG namespaces are identifiers, not fetches).
        assert not re.search(r"https?://(?!www\.w3\.org/)", html), url
    for asset in (STATIC / "css" / "app.css", STATIC / "js" / "app.js", STATIC / "favicon.svg"):
        text = asset.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/)|@import", text), asset.name


def test_html_responses_carry_the_csp(client: TestClient, viewer: str) -> None:
    policy = client.get("/twins").headers["content-security-policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]


# --- the twin grid and panel -------------------------------------------------------------


def test_twin_grid_has_one_card_per_asset_of_the_tenant(
    client: TestClient, viewer: str, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    soup = soup_of(client.get("/twins"))
    cards = soup.select("[data-role=asset-card]")
    assert sorted(int(card["data-asset-id"]) for card in cards) == sorted(
        asset.id for asset in tenant_a.assets
    )
    by_id = {int(card["data-asset-id"]): card for card in cards}
    for asset in tenant_a.assets:
        card = by_id[asset.id]
        assert card.name == "a" and card["href"] == f"/twins/assets/{asset.id}", "works without JS"
        assert card["hx-get"] == f"/twins/assets/{asset.id}"
        assert card["hx-target"] == "#twin-panel"
        assert card["hx-push-url"] == "true"
        assert card.select_one("[data-role=asset-code]").get_text(strip=True) == asset.code
        assert card.select_one("[data-role=asset-name]").get_text(strip=True) == asset.name
        assert card.select_one("[data-role=asset-type]").get_text(strip=True) == "Centrifugal pump"
        badge = card.select_one("[data-role=asset-criticality]")
        assert badge["data-criticality"] == "high" and badge.get_text(strip=True) == "High"
    panel = soup.select_one("#twin-panel")
    assert panel is not None and panel.select_one("[data-role=asset-panel]") is None
    # The panel follows the grid in the DOM, so the grid puts it on the inline-end side.
    assert soup.select_one("#asset-grid").find_next(id="twin-panel") is panel


def test_empty_tenant_gets_an_empty_state(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    empty = make_tenant_world(session_factory, "EMPTY_PLANT", asset_codes=())
    browser_login(client, empty.users["viewer"].email)
    soup = soup_of(client.get("/twins"))
    assert soup.select("[data-role=asset-card]") == []
    assert soup.select_one("#asset-grid [data-role=empty-state]") is not None


def test_asset_url_opened_directly_is_a_full_page_with_the_panel_open(
    client: TestClient, viewer: str, tenant_a: TenantWorld
) -> None:
    asset = tenant_a.assets[1]
    response = client.get(f"/twins/assets/{asset.id}")
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    soup = soup_of(response)
    assert soup.html is not None
    panel = soup.select_one("#twin-panel [data-role=asset-panel]")
    assert panel is not None and panel["data-asset-id"] == str(asset.id)
    # The heading's name is the name alone; the code sits beside it.
    assert panel.select_one("[data-role=asset-name]").get_text(strip=True) == asset.name
    assert panel.select_one("[data-role=asset-code]").get_text(strip=True) == asset.code
    assert panel.select_one("[data-role=asset-type]").get_text(strip=True) == "Centrifugal pump"
    assert panel.select_one("[data-role=asset-criticality]")["data-criticality"] == "high"
    selected = soup.select("[data-role=asset-card][aria-current=true]")
    assert [card["data-asset-id"] for card in selected] == [str(asset.id)]
    close = panel.select_one("[data-role=panel-close]")
    assert close["href"] == "/twins" and close["hx-target"] == "#twin-panel"


def test_htmx_request_gets_only_the_panel_block(
    client: TestClient, viewer: str, tenant_a: TenantWorld
) -> None:
    asset = tenant_a.assets[0]
    response = client.get(f"/twins/assets/{asset.id}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["vary"]
    assert "<html" not in response.text and "<body" not in response.text
    soup = soup_of(response)
    panels = soup.select("[data-role=asset-panel]")
    assert [panel["data-asset-id"] for panel in panels] == [str(asset.id)]
    assert soup.select("[data-role=asset-card]") == [], "the grid is not re-sent"


def test_history_restore_gets_the_full_page(
    client: TestClient, viewer: str, tenant_a: TenantWorld
) -> None:
    asset = tenant_a.assets[0]
    response = client.get(
        f"/twins/assets/{asset.id}",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    soup = soup_of(response)
    assert soup.html is not None and soup.select_one("nav.main-nav") is not None
    assert soup.select_one("#twin-panel [data-role=asset-panel]")["data-asset-id"] == str(asset.id)


def test_closing_the_panel_returns_an_empty_panel_block(client: TestClient, viewer: str) -> None:
    response = client.get("/twins", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.strip() == ""


def test_missing_asset_is_a_clear_error_page_and_an_in_panel_error(
    client: TestClient, viewer: str, tenant_b: TenantWorld
) -> None:
    for asset_id in (MISSING_ID, tenant_b.assets[0].id):
        page = client.get(f"/twins/assets/{asset_id}")
        assert page.status_code == 404
        soup = soup_of(page)
        assert soup.html is not None
        error = soup.select_one("[data-role=error-message][role=alert]")
        assert error is not None and error["data-status"] == "404"
        assert "Not found" in error.get_text()

        fragment = client.get(f"/twins/assets/{asset_id}", headers={"HX-Request": "true"})
        assert fragment.status_code == 404
        assert "<html" not in fragment.text
        assert soup_of(fragment).select_one("[data-role=error-message]")["data-status"] == "404"


def test_panel_lists_metric_buttons_and_loads_the_first_metric(
    client: TestClient, viewer: str, tenant_a: TenantWorld, mapped_signals: list[str]
) -> None:
    asset_id = tenant_a.assets[0].id
    soup = soup_of(client.get(f"/twins/assets/{asset_id}", headers={"HX-Request": "true"}))
    buttons = soup.select("[data-role=metric-button]")
    assert [button["data-metric"] for button in buttons] == mapped_signals
    for button in buttons:
        url = f"/twins/assets/{asset_id}/metrics/{button['data-metric']}"
        assert button["href"] == url and button["hx-get"] == url
        assert button["hx-target"] == "#metric-view" and button["hx-push-url"] == "true"
    assert [b.get_text(strip=True) for b in buttons] == ["Vibration RMS", "Temperature"]
    assert buttons[0].get("aria-current") == "true"
    loader = soup.select_one("#metric-view [hx-trigger=load]")
    assert loader["hx-get"] == f"/twins/assets/{asset_id}/metrics/{mapped_signals[0]}"
    assert loader.select_one("a[href]")["href"] == loader["hx-get"], "a link without JS"


def test_metric_fragment_is_live_with_a_stable_sse_element(
    client: TestClient, viewer: str, tenant_a: TenantWorld, mapped_signals: list[str]
) -> None:
    asset_id, metric = tenant_a.assets[0].id, mapped_signals[1]
    response = client.get(
        f"/twins/assets/{asset_id}/metrics/{metric}", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "<html" not in response.text
    soup = soup_of(response)
    view = soup.select_one("[data-role=metric-view]")
    assert view["data-metric"] == metric
    live = view.select_one("[sse-connect]")
    assert live["sse-connect"].startswith(f"/twins/assets/{asset_id}/metrics/{metric}/stream")
    assert live["sse-close"] == "close" and live["hx-ext"] == "sse"
    assert {child["sse-swap"] for child in live.select("[sse-swap]")} == {
        "latest", "chart", "table"}
    # The table's <details> is outside every swap: live updates keep it open.
    toggle = live.select_one("[data-role=chart-table-toggle]")
    assert toggle.name == "summary" and toggle.find_parent("[sse-swap]") is None
    # Its rows come with the stream's opening `table` event, not twice; a whole page has them.
    slot = toggle.find_parent("details").select_one("[sse-swap=table]")
    assert slot.select_one("[data-role=chart-table-loading]") is not None
    assert slot.select_one("[data-role=chart-table]") is None
    page = soup_of(client.get(f"/twins/assets/{asset_id}/metrics/{metric}"))
    assert page.select("[data-role=metric-view] [sse-swap=table] [data-role=chart-table] tbody tr")
    assert live.select_one("[sse-swap=latest] [data-role=latest-value]") is not None
    assert live.select_one("[sse-swap=latest] [data-role=unit]").get_text(strip=True) == "°C"
    assert live.select_one("[sse-swap=chart] svg[data-role=chart]") is not None
    status = live.select_one("[data-role=live-status]")
    assert status["data-state"] == "connecting"
    assert {"data-label-live", "data-label-stale", "data-label-disconnected"} <= set(status.attrs)
    ranges = view.select("[data-role=range-switch] a")
    assert [a["data-range"] for a in ranges] == ["100", "24h", "7d"]
    assert all(a["hx-target"] == "#metric-view" and a["href"] == a["hx-get"] for a in ranges)


def test_metric_url_opened_directly_shows_grid_panel_and_metric(
    client: TestClient, viewer: str, tenant_a: TenantWorld, mapped_signals: list[str]
) -> None:
    asset_id = tenant_a.assets[0].id
    soup = soup_of(client.get(f"/twins/assets/{asset_id}/metrics/{mapped_signals[1]}?range=7d"))
    assert len(soup.select("[data-role=asset-card]")) == len(tenant_a.assets)
    panel = soup.select_one("#twin-panel [data-role=asset-panel]")
    assert panel["data-asset-id"] == str(asset_id)
    view = panel.select_one("#metric-view [data-role=metric-view]")
    assert view["data-metric"] == mapped_signals[1] and view["data-range"] == "7d"
    current = panel.select("[data-role=metric-button][aria-current=true]")
    assert [button["data-metric"] for button in current] == [mapped_signals[1]]


def test_cards_show_latest_values_with_units(
    client: TestClient, viewer: str, tenant_a: TenantWorld, mapped_signals: list[str]
) -> None:
    soup = soup_of(client.get("/twins"))
    card = soup.select_one(f"[data-role=asset-card][data-asset-id='{tenant_a.assets[0].id}']")
    values = card.select("[data-role=card-value]")
    assert [value["data-metric"] for value in values] == mapped_signals
    assert [value.select_one(".unit").get_text(strip=True) for value in values] == ["mm/s", "°C"]


def test_asset_without_signals_says_so(
    client: TestClient, viewer: str, tenant_a: TenantWorld
) -> None:
    soup = soup_of(
        client.get(f"/twins/assets/{tenant_a.assets[1].id}", headers={"HX-Request": "true"})
    )
    assert soup.select("[data-role=metric-button]") == []
    assert soup.select_one("[data-role=asset-panel] [data-role=empty-state]") is not None


def test_blackbox_filters_swap_only_the_event_table(client: TestClient, viewer: str) -> None:
    soup = soup_of(client.get("/blackbox"))
    form = soup.select_one("form.filters")
    assert form["action"] == "/blackbox" and form["hx-get"] == "/blackbox"
    assert form["hx-target"] == "#blackbox-events"
    assert soup.select("[data-role=event-row]"), "events are listed"
    # The viewer's login is recorded, but logins are for tenant admins only (DESIGN.md §18).
    assert not soup.select("[data-role=event-row][data-category=AUTH]")
    fragment = client.get("/blackbox?category=SENSOR", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    assert soup_of(fragment).select("[data-role=event-row]") == []
    assert soup_of(fragment).select_one("[data-role=empty-state]") is not None


# --- the stylesheet ----------------------------------------------------------------------

PHYSICAL_DECLARATIONS = (
    re.compile(
        r"(?<![\w-])(?:margin|padding|border|inset|scroll-margin|scroll-padding)-(?:left|right)\b"
    ),
    re.compile(r"(?<![\w-])border-(?:top|bottom)-(?:left|right)-radius\b"),
    re.compile(r"(?<![\w-])(?:left|right)\s*:"),
    re.compile(r"(?<![\w-])(?:text-align|float|clear)\s*:\s*(?:left|right)\b"),
)
SHORTHAND = re.compile(r"(?<![\w-])(margin|padding)\s*:\s*([^;}]+)")


def stylesheet_rules() -> list[tuple[str, str]]:
    css = re.sub(r"/\*.*?\*/", "", (STATIC / "css" / "app.css").read_text(), flags=re.DOTALL)
    return [(m.group(1).strip(), m.group(2)) for m in re.finditer(r"([^{}]+)\{([^{}]*)\}", css)]


def test_stylesheet_uses_logical_properties_so_arabic_mirrors() -> None:
    problems = []
    for selector, body in stylesheet_rules():
        if "[dir=" in selector.replace(" ", ""):
            continue  # a deliberate, explicit mirror for one direction
        for pattern in PHYSICAL_DECLARATIONS:
            problems += [f"{selector} {{ {match.group(0)} }}" for match in pattern.finditer(body)]
        for match in SHORTHAND.finditer(body):
            # Three or four values set left and right separately: use *-inline / *-block.
            if len(match.group(2).split()) > 2:
                problems.append(f"{selector} {{ {match.group(0)} }}")
    assert problems == []


def test_stylesheet_honours_reduced_motion_and_styles_the_htmx_indicator() -> None:
    css = (STATIC / "css" / "app.css").read_text()
    assert re.search(r"@media\s*\(\s*prefers-reduced-motion:\s*reduce\s*\)", css)
    selectors = " ".join(selector for selector, _body in stylesheet_rules())
    assert ".htmx-indicator" in selectors and ".htmx-request" in selectors
    assert ":focus-visible" in selectors
    assert "tabular-nums" in css
