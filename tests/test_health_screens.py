"""Asset health on the operator's screens (DESIGN.md §15): the score and band word on every
card, the attention order of the grid, the panel's components, vibration class and trend.

Readings sit in a real SQL historian and the app's own health pass judges them; the expected
zones come from the ISO 20816-3 table of tests/health_site.py, not from the code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup, Tag

from tests.conftest import TenantWorld, browser_login
from tests.health_site import ISO_ZONES, Site, await_active_alarms, zone_value
from webapp.health.charts import HEIGHT, PAD_BOTTOM, PAD_TOP, build_health_trend

pytest_plugins = ("tests.health_site",)  # the `site` fixture

HX = {"HX-Request": "true"}


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def cards(page: BeautifulSoup) -> list[Tag]:
    return page.select("[data-role=asset-grid] [data-role=asset-card]")


def card_codes(page: BeautifulSoup) -> list[str]:
    return [card.select_one("[data-role=asset-code]").text.strip() for card in cards(page)]


def health_mark(card: Tag) -> Tag:
    marks = card.select("[data-role=health-score]")
    assert len(marks) == 1
    return marks[0]


def text_of(tag: Tag) -> str:
    return " ".join(tag.text.split())


def build_plant(site: Site) -> dict[str, int]:
    """Three judged pumps (group 2, rigid) besides the world's two unmapped ones:
    A-CALM in zone A, B-WORN in zone C, C-ALARM in zone A with a low-priority alarm."""
    boundaries = ISO_ZONES[2, "rigid"]
    ids = {
        "A-CALM": site.asset("A-CALM", machine_group=2, foundation="rigid"),
        "B-WORN": site.asset("B-WORN"),
        "C-ALARM": site.asset("C-ALARM"),
    }
    for code, zone in (("A-CALM", "A"), ("B-WORN", "C"), ("C-ALARM", "A")):
        site.signal(ids[code], "vibration_rms", f"{code}.VIB")
        site.steady(f"{code}.VIB", zone_value(zone, boundaries))
    mapping = site.signal(ids["C-ALARM"], "temperature", "C-ALARM.TEMP", unit="°C")
    site.steady("C-ALARM.TEMP", 80.0)
    limit = site.client.post("/api/alarm-limits", headers=site.headers, json={
        "mapping_id": mapping, "level": "hi", "threshold": 75.0, "priority": "low",
    })
    assert limit.status_code == 201, limit.text
    assert [a["priority"] for a in await_active_alarms(site)] == ["low"]
    return ids


def test_cards_say_not_yet_assessed_until_the_first_pass(
    site: Site, tenant_a: TenantWorld
) -> None:
    build_plant(site)
    browser_login(site.client, tenant_a.users["viewer"].email)

    page = soup(site.client.get("/twins").text)

    assert len(cards(page)) == 5
    for card in cards(page):
        mark = health_mark(card)
        assert (mark["data-band"], mark.get("data-assessed")) == ("no_data", "false")
        assert text_of(mark) == "Health not yet assessed"


def test_each_card_shows_its_score_with_the_band_word(
    site: Site, tenant_a: TenantWorld
) -> None:
    ids = build_plant(site)
    site.run_pass()
    browser_login(site.client, tenant_a.users["viewer"].email)

    page = soup(site.client.get("/twins").text)

    by_id = {int(card["data-asset-id"]): card for card in cards(page)}
    for code, asset_id in ids.items():
        api = site.health(asset_id)
        mark = health_mark(by_id[asset_id])
        word = {"good": "Good", "watch": "Watch", "alert": "Alert", "danger": "Danger"}
        assert (mark["data-band"], int(mark["data-score"])) == (api["band"], api["score"]), code
        assert text_of(mark) == f"Health {api['score']} · {word[api['band']]}"
    assert site.health(ids["B-WORN"])["band"] in ("alert", "danger"), "zone C alone is < 65"
    for world_asset in tenant_a.assets:  # assessed, but no signal to judge
        mark = health_mark(by_id[world_asset.id])
        assert mark["data-band"] == "no_data" and "data-assessed" not in mark.attrs
        assert text_of(mark) == "Health — · No data"


def test_the_grid_puts_alarms_first_then_the_lowest_health(
    site: Site, tenant_a: TenantWorld
) -> None:
    build_plant(site)
    site.run_pass()
    browser_login(site.client, tenant_a.users["viewer"].email)

    default = soup(site.client.get("/twins").text)
    attention = soup(site.client.get("/twins?sort=attention").text)
    by_code = soup(site.client.get("/twins?sort=code").text)

    # The alarm outranks a worse score; unscored assets come last, by code.
    assert card_codes(default) == ["C-ALARM", "B-WORN", "A-CALM", "C-301", "P-101"]
    assert card_codes(attention) == card_codes(default)
    assert card_codes(by_code) == ["A-CALM", "B-WORN", "C-301", "C-ALARM", "P-101"]
    current = {page_name: page.select_one("[data-role=grid-order] [aria-current=true]")
               for page_name, page in (("default", default), ("code", by_code))}
    assert current["default"]["data-order"] == "attention"
    assert current["code"]["data-order"] == "code"
    # Opening a card keeps the order the operator chose.
    first = cards(by_code)[0]
    assert first["href"].endswith("?sort=code") and first["hx-get"].endswith("?sort=code")
    assert not cards(default)[0]["href"].endswith("sort=code")
    reopened = soup(site.client.get(first["href"]).text)
    assert card_codes(reopened) == card_codes(by_code)


def test_an_unknown_order_is_refused_naming_the_parameter(
    site: Site, tenant_a: TenantWorld
) -> None:
    browser_login(site.client, tenant_a.users["viewer"].email)

    response = site.client.get("/twins?sort=newest")

    assert response.status_code == 422
    assert "sort" in response.text


def test_the_panel_explains_the_score_and_shows_its_class_and_trend(
    site: Site, tenant_a: TenantWorld
) -> None:
    ids = build_plant(site)
    first = site.run_pass(site.now - timedelta(minutes=30))
    site.run_pass()
    assert first.failed_reads == 0
    browser_login(site.client, tenant_a.users["viewer"].email)

    panel = soup(site.client.get(f"/twins/assets/{ids['C-ALARM']}", headers=HX).text)

    api = site.health(ids["C-ALARM"])
    section = panel.select_one("[data-role=asset-health]")
    assert section is not None and section["data-band"] == api["band"]
    assert int(section.select_one("[data-role=health-score]")["data-score"]) == api["score"]
    assert section.select_one("[data-role=health-zone]")["data-zone"] == "A"
    rows = section.select("[data-role=health-component]")
    assert [(r["data-name"], float(r["data-penalty"])) for r in rows] == [
        (c["name"], round(c["penalty"], 1)) for c in api["components"]
    ]
    assert {r["data-name"] for r in rows} >= {"active_alarms", "limit_nearness"}
    details = [text_of(r.select_one(".health-component-detail")) for r in rows]
    assert details == [" ".join(c["detail"].split()) for c in api["components"]]
    # Both passes stored a row (the first one 30 minutes ago): a two-point step trend.
    trend = section.select_one("svg[data-role=health-trend]")
    assert trend is not None and trend["data-points"] == "2"
    assert trend.select_one("[data-role=health-trend-line]")["d"].startswith("M")
    assert [text_of(label) for label in trend.select("[data-axis=value]")] == ["85", "65", "40"]
    # Not set on the asset: the §15 defaults for a pump, marked as defaults.
    group = panel.select_one("[data-role=asset-machine-group]")
    foundation = panel.select_one("[data-role=asset-foundation]")
    assert (group["data-value"], group.get("data-default")) == ("2", "true")
    assert (foundation["data-value"], foundation.get("data-default")) == ("rigid", "true")

    calm = soup(site.client.get(f"/twins/assets/{ids['A-CALM']}", headers=HX).text)
    group = calm.select_one("[data-role=asset-machine-group]")
    assert (group["data-value"], group.get("data-default")) == ("2", None)
    assert calm.select("[data-role=health-component]") == []
    assert text_of(calm.select_one("[data-role=health-note]")).startswith("Nothing lowers")


def test_the_panel_speaks_the_readers_language(site: Site, tenant_a: TenantWorld) -> None:
    ids = build_plant(site)
    site.run_pass()
    browser_login(site.client, tenant_a.users["viewer"].email)

    english = soup(site.client.get(f"/twins/assets/{ids['B-WORN']}", headers=HX).text)
    arabic = soup(site.client.get(f"/twins/assets/{ids['B-WORN']}?lang=ar", headers=HX).text)

    def words(page: BeautifulSoup) -> list[str]:
        section = page.select_one("[data-role=asset-health]")
        return [text_of(section.select_one(".health-band")),
                *(text_of(r) for r in section.select("[data-role=health-component]"))]

    assert len(words(arabic)) == len(words(english)) == 2
    for english_text, arabic_text in zip(words(english), words(arabic), strict=True):
        assert english_text != arabic_text
        assert any("\u0600" <= ch <= "\u06ff" for ch in arabic_text)


def test_the_panel_of_an_asset_never_assessed_or_gone_quiet_says_so(
    site: Site, tenant_a: TenantWorld
) -> None:
    quiet = site.asset("P-QUIET")
    site.signal(quiet, "vibration_rms", "P-QUIET.VIB")
    site.steady("P-QUIET.VIB", 1.0, last_age=timedelta(minutes=30))
    browser_login(site.client, tenant_a.users["viewer"].email)

    def note() -> str:
        panel = soup(site.client.get(f"/twins/assets/{quiet}", headers=HX).text)
        assert panel.select("[data-role=health-component]") == []
        return text_of(panel.select_one("[data-role=health-note]"))

    assert note() == "The health scanner has not assessed this asset yet."
    site.run_pass()
    assert note() == "No fresh good reading in the last 10 minutes, so no score is given."


# --- the trend as plain data -----------------------------------------------------------------

START = datetime(2026, 3, 1, tzinfo=UTC)
END = START + timedelta(hours=24)


def trend(points: list[tuple[datetime, int | None]]):  # type: ignore[no-untyped-def]
    return build_health_trend(points, start=START, end=END, timezone="UTC", locale="en")


def y_of(score: float) -> float:
    """Where §15's fixed 0–100 axis puts a score, from the drawing's published geometry."""
    return PAD_TOP + (100 - score) / 100 * (HEIGHT - PAD_TOP - PAD_BOTTOM)


def test_the_trend_axis_is_fixed_so_it_never_rescales() -> None:
    flat = trend([(START + timedelta(hours=1), 90)])
    dipped = trend([(START + timedelta(hours=1), 90), (START + timedelta(hours=1, minutes=5), 20)])

    assert flat.band_lines == dipped.band_lines
    assert [round(y, 1) for y, _ in flat.band_lines] == [round(y_of(s), 1) for s in (85, 65, 40)]
    assert f"{y_of(90):.1f}" in flat.path and f"{y_of(20):.1f}" in dipped.path


def test_the_trend_steps_and_breaks_where_nothing_was_known() -> None:
    at = START + timedelta(hours=2)
    points = [
        (at, 90),
        (at + timedelta(minutes=5), 70),  # a step down, joined
        (at + timedelta(minutes=10), None),  # no data: the line stops
        (at + timedelta(minutes=15), 80),  # starts again
        (at + timedelta(hours=3), 85),  # after a silent scanner: a new start
    ]

    drawn = trend(points)

    assert drawn.point_count == 4
    assert drawn.path.count("M") == 3 and drawn.path.count("V") == 1
    # The last score holds for at most 20 minutes, not to the window's end.
    last_x = float(drawn.path.split("H")[-1])
    plot = drawn.plot_right - drawn.plot_left
    expected = drawn.plot_left + (5 * 3600 + 20 * 60) / (24 * 3600) * plot
    assert abs(last_x - expected) < 0.1


def test_an_empty_window_draws_no_line() -> None:
    empty = trend([])
    assert (empty.path, empty.point_count) == ("", 0)
