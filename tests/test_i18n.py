"""Arabic is a first-class language: a complete catalog, RTL pages, a remembered choice.

The catalog tests extract messages exactly as `pybabel extract -F babel.cfg` does, so a template
string added later without an Arabic translation fails the build here, naming the string.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PASSWORD, TenantWorld, browser_login
from webapp.blackbox.service import record_event
from webapp.db import tenant_session

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
EXTRACTED_DIRS = ("templates", "partials", "webapp")

MessageId = str | tuple[str, ...]


@cache
def extracted_messages() -> dict[MessageId, list[str]]:
    """Every msgid in the sources, with where it was found, using babel.cfg's own mapping."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[MessageId, list[str]] = {}
    for directory in EXTRACTED_DIRS:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / directory, method_map, options_map
        ):
            found.setdefault(message, []).append(f"{directory}/{filename}:{lineno}")
    return found


def load_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def arabic_catalog() -> Catalog:
    return load_catalog(TRANSLATIONS / "ar" / "LC_MESSAGES" / "messages.po", locale="ar")


def page(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.text, "html.parser")


def html_lang_dir(response) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
    root = page(response).html
    assert root is not None, "a full page"
    return root.get("lang"), root.get("dir")


def nav_labels(response) -> list[str]:  # type: ignore[no-untyped-def]
    nav = page(response).select_one("nav.main-nav")
    assert nav is not None
    for hidden in nav.select(".visually-hidden"):  # words for screen readers only
        hidden.decompose()
    return [link.get_text(strip=True) for link in nav.select("a")]


# --- the catalog -------------------------------------------------------------------------


def test_extraction_finds_the_screens_messages() -> None:
    messages = extracted_messages()
    # Labels for stored codes are literal strings (partials/_labels.html), so they are found.
    for expected in (
        "Digital Twin",
        "BlackBox",
        "Centrifugal pump",
        "High",
        "Critical",
        "Invalid email or password",
        ("%(num)d asset", "%(num)d assets"),
    ):
        assert expected in messages


def test_every_extracted_message_has_an_arabic_translation() -> None:
    catalog = arabic_catalog()
    problems = []
    for msgid, places in sorted(extracted_messages().items(), key=lambda item: str(item[0])):
        entry = catalog.get(msgid)
        where = ", ".join(places[:2])
        if entry is None:
            problems.append(f"missing: {msgid!r} ({where})")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({where})")
        elif isinstance(msgid, tuple):
            forms = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
            if len(forms) != catalog.num_plurals or not all(form.strip() for form in forms):
                problems.append(
                    f"needs all {catalog.num_plurals} plural forms: {msgid!r} ({where})"
                )
        elif not (entry.string or "").strip():
            problems.append(f"untranslated: {msgid!r} ({where})")
    assert not problems, (
        "Arabic translations needed in translations/ar/LC_MESSAGES/messages.po "
        "(then `pybabel extract -F babel.cfg -o translations/messages.pot templates partials "
        "webapp`):\n" + "\n".join(problems)
    )


def test_arabic_catalog_is_well_formed() -> None:
    catalog = arabic_catalog()
    assert catalog.num_plurals == 6, "Arabic has six plural forms"
    # Placeholders such as %(num)d and %(code)s survive translation.
    errors = [(message.id, [str(error) for error in found]) for message, found in catalog.check()]
    assert errors == []


def test_messages_pot_lists_every_extracted_message() -> None:
    template = load_catalog(TRANSLATIONS / "messages.pot")
    missing = [msgid for msgid in extracted_messages() if template.get(msgid) is None]
    assert missing == [], (
        "regenerate: pybabel extract -F babel.cfg -o translations/messages.pot "
        "templates partials webapp"
    )


# --- rendered pages ----------------------------------------------------------------------


def test_twins_page_in_arabic_is_rtl_and_translated(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get("/twins?lang=ar")
    assert response.status_code == 200
    assert html_lang_dir(response) == ("ar", "rtl")
    assert nav_labels(response) == [
        "التوأم الرقمي", "الإنذارات", "الاتجاهات", "سجل الوردية", "الصندوق الأسود", "واجهة البرمجة"]
    soup = page(response)
    card = soup.select_one("[data-role=asset-card]")
    assert card is not None
    assert card.select_one("[data-role=asset-type]").get_text(strip=True) == "مضخة طرد مركزي"
    assert card.select_one("[data-role=asset-criticality]").get_text(strip=True) == "عالية"
    # Two assets: Arabic's dual form, not "2 assets".
    assert "أصلان" in soup.select_one("[data-role=asset-count]").get_text()
    assert soup.select_one("[data-role=logout]").get_text(strip=True) == "تسجيل الخروج"


def test_panel_fragment_follows_the_users_language(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    asset = tenant_a.assets[0]
    response = client.get(f"/twins/assets/{asset.id}?lang=ar", headers={"HX-Request": "true"})
    fragment = page(response)
    assert fragment.select_one("[data-role=asset-type]").get_text(strip=True) == "مضخة طرد مركزي"
    assert fragment.select_one("dt").get_text(strip=True) == "النوع"


def test_language_choice_is_remembered_for_the_user(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    csrf = browser_login(client, tenant_a.users["viewer"].email)
    client.get("/twins?lang=ar")
    assert html_lang_dir(client.get("/twins")) == ("ar", "rtl")
    assert html_lang_dir(client.get("/blackbox")) == ("ar", "rtl")

    # Stored on the user, not only in this browser session: it survives a new login.
    client.post("/logout", data={"csrf_token": csrf})
    browser_login(client, tenant_a.users["viewer"].email)
    assert html_lang_dir(client.get("/twins")) == ("ar", "rtl")

    english = client.get("/twins?lang=en")
    assert html_lang_dir(english) == ("en", "ltr")
    assert nav_labels(english) == ["Digital Twin", "Alarms", "Trends", "Logbook", "BlackBox", "API"]
    assert html_lang_dir(client.get("/twins")) == ("en", "ltr")


def test_other_users_keep_their_own_language(client: TestClient, tenant_a: TenantWorld) -> None:
    csrf = browser_login(client, tenant_a.users["viewer"].email)
    client.get("/twins?lang=ar")
    client.post("/logout", data={"csrf_token": csrf})
    browser_login(client, tenant_a.users["engineer"].email)
    assert html_lang_dir(client.get("/twins")) == ("en", "ltr")


def test_login_page_honours_lang_for_anonymous_visitors(client: TestClient) -> None:
    arabic = client.get("/login?lang=ar")
    assert html_lang_dir(arabic) == ("ar", "rtl")
    assert page(arabic).select_one("button[type=submit]").get_text(strip=True) == "تسجيل الدخول"
    # Remembered in the (anonymous) session for the next visit.
    assert html_lang_dir(client.get("/login")) == ("ar", "rtl")
    assert html_lang_dir(client.get("/login?lang=en")) == ("en", "ltr")
    assert html_lang_dir(client.get("/login")) == ("en", "ltr")


def test_unsupported_language_falls_back_to_english(client: TestClient) -> None:
    assert html_lang_dir(client.get("/login?lang=xx")) == ("en", "ltr")


def test_login_errors_are_translated(client: TestClient, tenant_a: TenantWorld) -> None:
    client.get("/login?lang=ar")
    response = client.post(
        "/login", data={"email": tenant_a.users["viewer"].email, "password": PASSWORD + "x"}
    )
    assert response.status_code == 401
    error = page(response).select_one("[data-role=login-error]")
    assert error is not None
    assert error.get_text(strip=True) == "البريد الإلكتروني أو كلمة المرور غير صحيحة"


@pytest.fixture
def recorded_events(session_factory: sessionmaker[Session], tenant_a: TenantWorld) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        for category, severity in (("ALARM", "WARNING"), ("CONNECTOR", "CRITICAL")):
            record_event(
                session,
                tenant_id=tenant_a.tenant.id,
                asset_id=tenant_a.assets[0].id,
                source_system="TEST",
                source_type="TEST",
                event_category=category,
                severity=severity,
                summary=f"{category} test",
                payload={},
            )
        session.commit()


@pytest.mark.usefixtures("recorded_events")
def test_blackbox_labels_in_arabic(client: TestClient, tenant_a: TenantWorld) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    soup = page(client.get("/blackbox?lang=ar"))
    rows = {row["data-category"]: row for row in soup.select("[data-role=event-row]")}
    assert rows["ALARM"].select_one(".severity").get_text(strip=True) == "تحذير"
    assert "إنذار" in rows["ALARM"].get_text()
    assert rows["CONNECTOR"].select_one(".severity").get_text(strip=True) == "حرج"
    options = [
        option.get_text(strip=True) for option in soup.select("select[name=severity] option")
    ]
    assert options == ["الكل", "معلومات", "تحذير", "حرج"]


def test_blackbox_summaries_follow_the_viewers_language(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    # A tenant admin: only admins see logins on the BlackBox screen (DESIGN.md §18).
    email = tenant_a.admin.email
    browser_login(client, email)  # writes the AUTH event shown below
    english = BeautifulSoup(client.get("/blackbox?category=AUTH").text, "html.parser")
    assert f"Login succeeded for {email}" in english.select_one("[data-role=event-row]").text
    arabic = BeautifulSoup(client.get("/blackbox?category=AUTH&lang=ar").text, "html.parser")
    row = arabic.select_one("[data-role=event-row]").text
    assert f"نجح تسجيل الدخول للمستخدم {email}" in row
    assert "Login succeeded" not in row
    client.get("/twins?lang=en")
