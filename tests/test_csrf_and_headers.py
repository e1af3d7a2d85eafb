"""CSRF (DESIGN.md §7), security headers on every response, and an offline /docs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import event_count
from webapp.config import Settings
from webapp.main import create_app

NEW_ASSET = {
    "code": "K-900",
    "name": "Flare Knockout Drum",
    "asset_type": "vessel",
    "criticality": "medium",
    "location": "Unit 9",
}
STRICT_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}


def asset_codes(client: TestClient, headers: dict[str, str] | None = None) -> set[str]:
    response = client.get("/api/twins/assets", headers=headers or {})
    assert response.status_code == 200
    return {asset["code"] for asset in response.json()["assets"]}


def page_csrf_token(html: str) -> str:
    body = BeautifulSoup(html, "html.parser").body
    assert body is not None
    return json.loads(body["hx-headers"])["X-CSRF-Token"]


# --- CSRF ------------------------------------------------------------------------------------


def test_page_carries_the_session_csrf_token_in_hx_headers_and_the_logout_form(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    token = browser_login(client, tenant_a.users["viewer"].email)
    soup = BeautifulSoup(client.get("/twins").text, "html.parser")
    assert json.loads(soup.body["hx-headers"]) == {"X-CSRF-Token": token}
    logout_form = soup.select_one('form[action="/logout"]')
    assert logout_form is not None and logout_form["method"] == "post"
    assert logout_form.select_one('input[name="csrf_token"]')["value"] == token
    # Bound to the session: a new login gets a new token.
    assert browser_login(client, tenant_a.users["viewer"].email) != token


def test_cookie_post_without_csrf_token_is_403_and_changes_nothing(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    browser_login(client, tenant_a.users["engineer"].email)
    response = client.post("/api/assets", json=NEW_ASSET)
    assert response.status_code == 403
    assert "csrf" in response.json()["detail"].lower()
    assert NEW_ASSET["code"] not in asset_codes(client)


@pytest.mark.parametrize("wrong", ["0" * 64, "nonsense", "x"])
def test_cookie_post_with_a_wrong_csrf_token_is_403(
    client: TestClient, tenant_a: TenantWorld, wrong: str
) -> None:
    browser_login(client, tenant_a.users["engineer"].email)
    response = client.post("/api/assets", json=NEW_ASSET, headers={"X-CSRF-Token": wrong})
    assert response.status_code == 403
    assert NEW_ASSET["code"] not in asset_codes(client)


def test_cookie_post_with_the_page_csrf_token_works(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    browser_login(client, tenant_a.users["engineer"].email)
    token = page_csrf_token(client.get("/twins").text)
    response = client.post("/api/assets", json=NEW_ASSET, headers={"X-CSRF-Token": token})
    assert response.status_code == 201, response.text
    assert response.json()["code"] == NEW_ASSET["code"]
    assert NEW_ASSET["code"] in asset_codes(client)


# The unsafe routes outside the published API, besides login (refused cross-site by its own
# check) and logout (tested below).
HTML_FORM_ROUTES = [("POST", "/alarms/{alarm_id}/ack"), ("POST", "/logbook")]


def test_every_unsafe_route_refuses_a_cookie_request_without_the_token(
    app: FastAPI, client: TestClient, owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    """Whichever route: a browser session's cookie alone never changes anything (403 before
    the route runs, no BlackBox event), even for the role allowed to make the change."""
    operations = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in {"post", "put", "patch", "delete"} and path != "/api/auth/token"
    ]
    assert len(operations) >= 15, operations  # the published API's writes, not a handful
    browser_login(client, tenant_a.admin.email)
    events_before = event_count(owner_engine, tenant_id=tenant_a.tenant.id)
    for method, path in operations + HTML_FORM_ROUTES:
        url = re.sub(r"\{[a-z_]+\}", "1", path)
        response = client.request(method, url, json={})
        assert response.status_code == 403, (method, path, response.status_code)
        assert "csrf" in response.text.lower(), (method, path)  # JSON or an error page
    assert event_count(owner_engine, tenant_id=tenant_a.tenant.id) == events_before


def test_csrf_token_of_another_session_is_rejected(
    app: FastAPI, client: TestClient, tenant_a: TenantWorld
) -> None:
    # Another browser on the running app (a second lifespan would start a second scanner).
    other_browser = TestClient(client.app)
    other_token = browser_login(other_browser, tenant_a.users["engineer"].email)
    browser_login(client, tenant_a.users["engineer"].email)
    response = client.post("/api/assets", json=NEW_ASSET, headers={"X-CSRF-Token": other_token})
    assert response.status_code == 403


def test_logout_needs_the_csrf_form_field(client: TestClient, tenant_a: TenantWorld) -> None:
    token = browser_login(client, tenant_a.users["viewer"].email)
    for data in ({}, {"csrf_token": "wrong"}):
        refused = client.post("/logout", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert client.get("/api/twins/assets").status_code == 200  # still logged in
    done = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/api/twins/assets").status_code == 401


def test_logout_accepts_the_csrf_header_like_htmx_sends_it(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    token = browser_login(client, tenant_a.users["viewer"].email)
    done = client.post("/logout", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/api/twins/assets").status_code == 401


def test_bearer_requests_are_exempt_from_csrf(client: TestClient, tenant_a: TenantWorld) -> None:
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    response = client.post("/api/assets", json=NEW_ASSET, headers=headers)
    assert response.status_code == 201, response.text


def test_bearer_wins_even_when_a_session_cookie_is_present(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.users["engineer"].email)
    browser_login(client, tenant_a.users["viewer"].email)  # the cookie is a viewer's
    response = client.post("/api/assets", json=NEW_ASSET, headers=headers)
    assert response.status_code == 201, response.text


# --- security headers ------------------------------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_basic_headers(response) -> None:  # type: ignore[no-untyped-def]
    assert response.headers.get("x-content-type-options") == "nosniff", response.request.url
    assert response.headers.get("referrer-policy") in STRICT_REFERRER_POLICIES


def assert_strict_html_csp(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response.headers.get("content-security-policy")
    assert header, f"no CSP on {response.request.url}"
    directives = csp_directives(header)
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src, header
    for forbidden in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
        assert forbidden not in script_src, header
    assert directives.get("frame-ancestors") == ["'none'"], header
    return directives


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/healthz", 200, "application/json"),
        ("/openapi.json", 200, "application/json"),
        ("/login", 200, "text/html"),
        ("/docs", 200, "text/html"),
        ("/static/css/app.css", 200, "text/css"),
        ("/static/vendor/htmx-2.0.11.min.js", 200, ("text/javascript", "application/javascript")),
        ("/static/js/app.js", 200, ("text/javascript", "application/javascript")),
        ("/no/such/page", 404, "text/html"),
        ("/api/no/such/thing", 404, "application/json"),
        ("/static/no-such-file.js", 404, "application/json"),
        ("/api/twins/assets", 401, "application/json"),
        ("/twins", 303, None),
        ("/api/auth/token", 405, "application/json"),
    ],
)
def test_every_response_has_the_security_headers(
    client: TestClient, path: str, status: int, content_type: str | tuple[str, ...] | None
) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == status
    if content_type:
        assert response.headers["content-type"].startswith(content_type)
    assert_basic_headers(response)
    if response.headers.get("content-type", "").startswith("text/html"):
        assert_strict_html_csp(response)


def test_pages_and_fragments_have_a_strict_csp_and_no_inline_script(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    asset_id = tenant_a.assets[0].id
    requests = [
        ("/twins", {}),
        (f"/twins/assets/{asset_id}", {}),
        (f"/twins/assets/{asset_id}", {"HX-Request": "true"}),
        ("/blackbox", {}),
        ("/blackbox?lang=ar", {}),
        ("/twins/assets/999999", {}),
        ("/login", {}),
    ]
    for path, headers in requests:
        response = client.get(path, headers=headers)
        assert response.status_code in (200, 404), path
        assert response.headers["content-type"].startswith("text/html")
        assert_basic_headers(response)
        assert_strict_html_csp(response)
        soup = BeautifulSoup(response.text, "html.parser")
        for script in soup.find_all("script"):
            assert script.get("src"), f"inline script on {path}: {script}"
            assert script["src"].startswith("/static/"), script["src"]
        for tag in soup.find_all(True):
            handlers = [name for name in tag.attrs if name.lower().startswith("on")]
            assert not handlers, f"inline event handler on {path}: {tag.name} {handlers}"


@pytest.fixture
def failing_app(settings: Settings) -> Iterator[TestClient]:
    """A second app on the same database, with one route that crashes."""
    application = create_app(settings)

    @application.get("/api/crash")
    def crash() -> None:
        raise RuntimeError("boom")

    with TestClient(application, raise_server_exceptions=False) as test_client:
        yield test_client
    application.state.engine.dispose()


def test_even_an_unexpected_500_has_the_security_headers_and_json(
    failing_app: TestClient,
) -> None:
    response = failing_app.get("/api/crash")
    assert response.status_code == 500
    assert_basic_headers(response)
    assert response.json() == {"detail": "Internal server error"}
    assert "boom" not in response.text


# --- /docs offline ---------------------------------------------------------------------------


def test_docs_use_only_vendored_swagger_ui(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), (
        "/docs must not reference an external host"
    )
    soup = BeautifulSoup(html, "html.parser")
    script_sources = [s["src"] for s in soup.find_all("script", src=True)]
    stylesheets = [link["href"] for link in soup.find_all("link", rel="stylesheet")]
    assert script_sources and stylesheets
    vendored = re.compile(r"^/static/vendor/swagger-ui-[0-9][0-9.]*/[\w.-]+$")
    for url in script_sources + stylesheets:
        assert vendored.match(url), url
    every_local_url = [
        tag.get(attribute)
        for tag in soup.find_all(True)
        for attribute in ("src", "href")
        if tag.get(attribute)
    ]
    assert set(script_sources + stylesheets) <= set(every_local_url)
    for url in every_local_url:
        assert url.startswith("/") and not url.startswith("//"), url
        fetched = client.get(url)
        assert fetched.status_code == 200, url
        assert len(fetched.content) > 0
    assert "'/openapi.json'" in html or '"/openapi.json"' in html


def test_docs_init_script_is_allowed_only_by_its_nonce(client: TestClient) -> None:
    first = client.get("/docs")
    directives = assert_strict_html_csp(first)
    nonces = [
        word[len("'nonce-") : -1] for word in directives["script-src"] if word.startswith("'nonce-")
    ]
    assert len(nonces) == 1
    soup = BeautifulSoup(first.text, "html.parser")
    inline = [s for s in soup.find_all("script") if not s.get("src")]
    assert len(inline) == 1
    assert inline[0].get("nonce") == nonces[0]
    assert "SwaggerUIBundle" in inline[0].get_text()
    for script in soup.find_all("script", src=True):
        assert script["src"].startswith("/static/")  # allowed by 'self'
    # A fresh nonce per response.
    second = client.get("/docs")
    assert (
        csp_directives(second.headers["content-security-policy"])["script-src"]
        != (directives["script-src"])
    )
    # The relaxed policy stays on /docs: ordinary pages keep the strict default.
    login_csp = client.get("/login").headers["content-security-policy"]
    assert "nonce-" not in login_csp and "'unsafe-inline'" not in login_csp
