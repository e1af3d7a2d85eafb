"""Authentication (DESIGN.md §5, §6, §7): browser sessions, bearer tokens, throttling, AUTH events.

Every test runs on SQLite and PostgreSQL (the `database_url` fixture) and checks what a browser or
an API client sees; the database is read through the owner engine only to prove storage facts
(hashed tokens, counted failures) that no client can observe.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import Engine, insert, select, update

from tests.conftest import PASSWORD, TenantWorld, bearer_headers, browser_login, changes_heard
from webapp.blackbox.models import BlackBoxEvent
from webapp.config import Settings
from webapp.db import utcnow
from webapp.security import token_digest
from webapp.tenancy.models import ApiToken, LoginFailure, Tenant, User, UserSession

COOKIE = "optria_session"
GENERIC_401 = {"detail": "Invalid email or password"}


# --- helpers ---------------------------------------------------------------------------------


def session_cookie(client: TestClient) -> str | None:
    return client.cookies.get(COOKIE)


def use_cookie(client: TestClient, value: str) -> None:
    """Replay a captured cookie as the only cookie the client sends."""
    client.cookies.clear()
    client.cookies.set(COOKIE, value)


def cookie_session_id(cookie: str, settings: Settings) -> str:
    """The server-side session id inside Starlette's signed cookie (checks the signature too)."""
    payload = TimestampSigner(settings.secret_key).unsign(cookie.encode())
    return json.loads(base64.b64decode(payload))["sid"]


def form_login(client: TestClient, email: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/login", data={"email": email, "password": password, **extra}, follow_redirects=False
    )


def token_login(client: TestClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/api/auth/token", data={"username": email, "password": password})


def add_failures(
    engine: Engine,
    *,
    count: int,
    email: str = "someone@x.example",
    client_address: str = "testclient",
    age: timedelta = timedelta(0),
    distinct_emails: bool = False,
) -> None:
    at = utcnow() - age
    rows = [
        {
            "email": f"{i}-{email}" if distinct_emails else email,
            "client_address": client_address,
            "attempted_at": at,
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(LoginFailure.__table__), rows)


def auth_events(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(BlackBoxEvent.__table__)
            .where(BlackBoxEvent.__table__.c.event_category == "AUTH")
            .order_by(BlackBoxEvent.__table__.c.id)
        ).mappings()
        return [dict(row) for row in rows]


def all_events(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(BlackBoxEvent.__table__)).mappings()]


def set_user_active(engine: Engine, user: User, active: bool) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(User.__table__).where(User.__table__.c.id == user.id).values(is_active=active)
        )


def set_tenant_active(engine: Engine, tenant: Tenant, active: bool) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(Tenant.__table__)
            .where(Tenant.__table__.c.id == tenant.id)
            .values(is_active=active)
        )


def assert_login_redirect(response, path_and_query: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": [path_and_query]}


# --- browser sessions ------------------------------------------------------------------------


def test_login_page_renders_a_form(client: TestClient) -> None:
    response = client.get("/login?next=/blackbox")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'action="/login"' in response.text
    assert 'name="email"' in response.text and 'name="password"' in response.text
    assert 'name="next" value="/blackbox"' in response.text


def test_form_login_sets_a_session_cookie_and_redirects_to_twins(
    client: TestClient, tenant_a: TenantWorld, settings: Settings, owner_engine: Engine
) -> None:
    assert session_cookie(client) is None
    response = form_login(client, tenant_a.users["viewer"].email)
    assert response.status_code == 303
    assert response.headers["location"] == "/twins"
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}=")
    assert "httponly" in set_cookie.lower() and "samesite=lax" in set_cookie.lower()

    page = client.get("/twins")
    assert page.status_code == 200
    assert tenant_a.users["viewer"].email in page.text

    # The cookie holds a random id; the database holds only its digest.
    sid = cookie_session_id(session_cookie(client), settings)
    with owner_engine.connect() as connection:
        rows = connection.execute(select(UserSession.__table__)).mappings().all()
    assert [row["session_hash"] for row in rows] == [token_digest(sid)]
    assert sid not in json.dumps([dict(row) for row in rows], default=str)


def test_wrong_password_on_the_form_is_401_without_a_session(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    response = form_login(client, tenant_a.users["viewer"].email, "not the password")
    assert response.status_code == 401
    assert 'data-role="login-error"' in response.text
    assert client.get("/twins", follow_redirects=False).status_code == 303


def test_session_id_changes_at_each_login_and_the_old_one_dies(
    client: TestClient, tenant_a: TenantWorld, settings: Settings
) -> None:
    # A cookie from before login (the language choice on the login page) is not kept.
    client.get("/login?lang=ar")
    before_login = session_cookie(client)
    assert before_login is not None
    form_login(client, tenant_a.users["viewer"].email)
    first = session_cookie(client)
    assert first is not None and first != before_login
    first_sid = cookie_session_id(first, settings)

    form_login(client, tenant_a.users["viewer"].email)
    second = session_cookie(client)
    second_sid = cookie_session_id(second, settings)
    assert second_sid != first_sid

    # The cookie from the first login no longer authenticates: a re-login revokes it.
    use_cookie(client, first)
    assert_login_redirect(client.get("/twins", follow_redirects=False), "/twins")
    use_cookie(client, second)
    assert client.get("/twins").status_code == 200


def test_login_as_another_tenant_revokes_the_previous_session(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    form_login(client, tenant_a.users["viewer"].email)
    tenant_a_cookie = session_cookie(client)
    form_login(client, tenant_b.users["viewer"].email)
    assert session_cookie(client) != tenant_a_cookie
    use_cookie(client, tenant_a_cookie)
    assert client.get("/api/twins/assets").status_code == 401


def test_logout_revokes_the_session_for_pages_and_api(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    csrf = browser_login(client, tenant_a.users["engineer"].email)
    old_cookie = session_cookie(client)
    assert client.get("/api/twins/assets").status_code == 200

    response = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"

    # Replaying the captured cookie is anonymous everywhere.
    use_cookie(client, old_cookie)
    assert_login_redirect(client.get("/twins?x=1", follow_redirects=False), "/twins?x=1")
    api = client.get("/api/twins/assets")
    assert api.status_code == 401
    assert api.headers["www-authenticate"] == "Bearer"
    assert "detail" in api.json()


def test_logout_of_a_deactivated_user_still_revokes_the_session(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    user = tenant_a.users["viewer"]
    csrf = browser_login(client, user.email)
    old_cookie = session_cookie(client)
    set_user_active(owner_engine, user, False)
    logout = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert logout.status_code == 303
    set_user_active(owner_engine, user, True)
    use_cookie(client, old_cookie)
    assert client.get("/api/twins/assets").status_code == 401


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("/blackbox?category=AUTH", "/blackbox?category=AUTH"),
        ("/twins/assets/3", "/twins/assets/3"),
        ("//evil.com", "/twins"),
        ("//evil.com/twins", "/twins"),
        ("https://evil.com", "/twins"),
        ("http://evil.com/twins", "/twins"),
        ("/\\evil.com", "/twins"),
        ("\\\\evil.com", "/twins"),
        ("evil.com", "/twins"),
        ("javascript:alert(1)", "/twins"),
        ("", "/twins"),
    ],
)
def test_login_returns_to_same_origin_next_only(
    client: TestClient, tenant_a: TenantWorld, next_value: str, expected: str
) -> None:
    response = form_login(client, tenant_a.users["viewer"].email, next=next_value)
    assert response.status_code == 303
    assert response.headers["location"] == expected
    # The login page never renders a foreign target into its form either.
    page = client.get("/login", params={"next": next_value})
    assert f'name="next" value="{expected}"' in page.text.replace("&amp;", "&")


def test_login_for_a_path_with_control_characters_never_leaves_the_site(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    # Browsers drop tabs and newlines from URLs: "/\t/evil.com" would become "//evil.com".
    response = form_login(client, tenant_a.users["viewer"].email, next="/\t/evil.com")
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "\t" not in location and "\n" not in location


# --- bearer tokens ---------------------------------------------------------------------------


def test_token_endpoint_returns_an_oauth2_bearer_token(
    client: TestClient, tenant_a: TenantWorld, settings: Settings
) -> None:
    response = token_login(client, tenant_a.users["viewer"].email)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.api_token_max_age_seconds
    assert len(body["access_token"]) >= 32

    assets = client.get(
        "/api/twins/assets", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert assets.status_code == 200
    assert {a["code"] for a in assets.json()["assets"]} == {a.code for a in tenant_a.assets}


def test_token_is_stored_hashed(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    raw = token_login(client, tenant_a.users["viewer"].email).json()["access_token"]
    with owner_engine.connect() as connection:
        rows = [dict(r) for r in connection.execute(select(ApiToken.__table__)).mappings()]
    assert len(rows) == 1
    assert rows[0]["token_hash"] == token_digest(raw)
    dumped = json.dumps(rows, default=str)
    assert raw not in dumped


@pytest.mark.parametrize("change", ["expired", "revoked"])
def test_expired_or_revoked_token_is_401(
    app: FastAPI, client: TestClient, tenant_a: TenantWorld, owner_engine: Engine, change: str
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    assert client.get("/api/twins/assets", headers=headers).status_code == 200
    values = (
        {"expires_at": utcnow() - timedelta(seconds=1)}
        if change == "expired"
        else {"revoked_at": utcnow()}
    )
    with owner_engine.begin() as connection:
        connection.execute(update(ApiToken.__table__).values(**values))
    changes_heard(app)  # an edit outside the app: the caches hear of it (§17)
    response = client.get("/api/twins/assets", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "detail" in response.json()


def test_garbage_bearer_token_is_401(client: TestClient, tenant_a: TenantWorld) -> None:
    response = client.get("/api/twins/assets", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_wrong_password_and_unknown_email_answer_identically(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    wrong = token_login(client, tenant_a.users["viewer"].email, "wrong password")
    unknown = token_login(client, "nobody@nowhere.example", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == GENERIC_401
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"


def test_inactive_user_cannot_log_in_nor_use_a_token(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    user = tenant_a.users["engineer"]
    headers = bearer_headers(client, user.email)
    set_user_active(owner_engine, user, False)
    assert client.get("/api/twins/assets", headers=headers).status_code == 401
    response = token_login(client, user.email)
    assert response.status_code == 401
    assert response.json() == GENERIC_401
    assert form_login(client, user.email).status_code == 401
    # Other users of the tenant are unaffected.
    assert token_login(client, tenant_a.users["viewer"].email).status_code == 200


def test_inactive_tenant_locks_out_tokens_sessions_and_logins(
    app: FastAPI, client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld,
    owner_engine: Engine,
) -> None:
    user = tenant_a.users["viewer"]
    headers = bearer_headers(client, user.email)
    browser_login(client, user.email)
    set_tenant_active(owner_engine, tenant_a.tenant, False)
    changes_heard(app)  # tenants are deactivated by SQL: the caches hear of it (§17)

    assert client.get("/api/twins/assets", headers=headers).status_code == 401
    assert client.get("/api/twins/assets").status_code == 401  # the session cookie
    assert_login_redirect(client.get("/twins", follow_redirects=False), "/twins")
    response = token_login(client, user.email)
    assert response.status_code == 401
    assert response.json() == GENERIC_401
    assert form_login(client, user.email).status_code == 401
    # Another tenant is unaffected.
    assert token_login(client, tenant_b.users["viewer"].email).status_code == 200


# --- throttling ------------------------------------------------------------------------------


def assert_throttled(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    seconds = int(retry_after)
    assert 1 <= seconds <= 900
    return seconds


def test_five_failures_for_an_email_throttle_it_even_with_the_right_password(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    email = tenant_a.users["viewer"].email
    # Mixed case counts as the same email.
    for variant in (email, email.upper(), email.title(), f"  {email}  ", email.swapcase()):
        assert token_login(client, variant, "wrong").status_code == 401
    seconds = assert_throttled(token_login(client, email))
    assert seconds > 880  # the oldest failure just happened: nearly the whole window is left
    assert_throttled(token_login(client, email.upper()))
    form = form_login(client, email)
    assert_throttled(form)
    assert session_cookie(client) is None
    # Only that email: the same client can still log in as someone else.
    assert token_login(client, tenant_a.users["engineer"].email).status_code == 200
    assert token_login(client, tenant_b.users["viewer"].email).status_code == 200


def test_four_failures_do_not_throttle(client: TestClient, tenant_a: TenantWorld) -> None:
    email = tenant_a.users["viewer"].email
    for _ in range(4):
        assert token_login(client, email, "wrong").status_code == 401
    assert token_login(client, email).status_code == 200


def test_unknown_email_is_throttled_exactly_like_a_known_one(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    known = tenant_a.users["viewer"].email
    unknown = "Ghost@Nowhere.example"
    answers: dict[str, list[tuple[int, str]]] = {known: [], unknown: []}
    for email in (known, unknown):
        for _ in range(6):
            response = token_login(client, email.lower(), "wrong")
            answers[email].append((response.status_code, response.text))
    assert [code for code, _ in answers[known]] == [401] * 5 + [429]
    assert answers[known] == answers[unknown]
    assert_throttled(token_login(client, unknown))


def test_success_resets_the_email_count(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    email = tenant_a.users["viewer"].email
    for _ in range(4):
        token_login(client, email, "wrong")
    assert token_login(client, email.upper()).status_code == 200
    for _ in range(4):
        assert token_login(client, email, "wrong").status_code == 401
    assert token_login(client, email).status_code == 200
    with owner_engine.connect() as connection:
        remaining = connection.execute(
            select(LoginFailure.__table__).where(LoginFailure.__table__.c.email == email)
        ).all()
    assert remaining == []


def test_failures_older_than_the_window_do_not_count(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    email = tenant_a.users["viewer"].email
    add_failures(owner_engine, count=10, email=email, age=timedelta(minutes=15, seconds=30))
    add_failures(owner_engine, count=150, age=timedelta(minutes=16), distinct_emails=True)
    assert token_login(client, email).status_code == 200


def test_retry_after_counts_the_seconds_left(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    email = tenant_a.users["viewer"].email
    add_failures(owner_engine, count=5, email=email, age=timedelta(minutes=14))
    seconds = assert_throttled(token_login(client, email))
    assert 40 <= seconds <= 61  # 60 s left, minus however slow this machine is


def test_one_hundred_failures_from_one_address_throttle_that_address(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    # 99 recorded failures from this client (TestClient's address), each for a different email.
    add_failures(owner_engine, count=99, distinct_emails=True)
    assert token_login(client, tenant_a.users["viewer"].email).status_code == 200
    # The 100th failure comes through HTTP: it must be counted for the address.
    assert token_login(client, "fresh@nowhere.example", "wrong").status_code == 401
    assert_throttled(token_login(client, tenant_a.users["engineer"].email))
    assert_throttled(form_login(client, tenant_a.users["tenant_admin"].email))
    # Failures from other addresses do not count against this one, and vice versa.
    with owner_engine.connect() as connection:
        addresses = set(
            connection.execute(select(LoginFailure.__table__.c.client_address)).scalars()
        )
    assert addresses == {"testclient"}


def test_failures_from_another_address_do_not_throttle_this_one(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    add_failures(owner_engine, count=120, client_address="203.0.113.9", distinct_emails=True)
    assert token_login(client, tenant_a.users["viewer"].email).status_code == 200


def test_a_throttled_attempt_is_not_recorded_as_an_event(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    email = tenant_a.users["viewer"].email
    add_failures(owner_engine, count=5, email=email)
    assert_throttled(token_login(client, email))
    assert auth_events(owner_engine) == []


# --- AUTH BlackBox events --------------------------------------------------------------------


def test_successful_login_writes_one_info_auth_event_without_the_password(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    user = tenant_a.users["engineer"]
    assert token_login(client, user.email.upper()).status_code == 200
    events = auth_events(owner_engine)
    assert len(events) == 1
    event = events[0]
    assert event["severity"] == "INFO"
    assert event["tenant_id"] == tenant_a.tenant.id
    assert event["payload"]["email"] == user.email
    assert PASSWORD not in json.dumps(event, default=str)

    form_login(client, user.email)
    events = auth_events(owner_engine)
    assert [e["severity"] for e in events] == ["INFO", "INFO"]
    assert PASSWORD not in json.dumps(events, default=str)


def test_failed_login_writes_a_warning_in_the_users_tenant(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld, owner_engine: Engine
) -> None:
    bad_password = "hunter2-wrong-password"
    user = tenant_b.users["viewer"]
    assert token_login(client, user.email, bad_password).status_code == 401
    events = auth_events(owner_engine)
    assert len(events) == 1
    assert events[0]["severity"] == "WARNING"
    assert events[0]["tenant_id"] == tenant_b.tenant.id
    assert events[0]["payload"]["email"] == user.email
    assert bad_password not in json.dumps(events, default=str)

    # The tenant's own API shows it; the other tenant's does not.
    admin_b = bearer_headers(client, tenant_b.admin.email)
    shown = client.get("/api/blackbox/events?category=AUTH", headers=admin_b).json()["events"]
    assert [(e["severity"], e["payload"]["email"]) for e in shown] == [
        ("INFO", tenant_b.admin.email),
        ("WARNING", user.email),
    ]
    admin_a = bearer_headers(client, tenant_a.admin.email)
    shown_a = client.get("/api/blackbox/events?category=AUTH", headers=admin_a).json()["events"]
    assert [e["payload"]["email"] for e in shown_a] == [tenant_a.admin.email]


def test_failed_login_for_an_unknown_email_writes_no_event(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    before = all_events(owner_engine)
    assert token_login(client, "nobody@nowhere.example", PASSWORD).status_code == 401
    assert form_login(client, "nobody@nowhere.example", PASSWORD).status_code == 401
    assert all_events(owner_engine) == before


# --- unauthenticated requests ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/twins/assets", "/api/assets/1", "/api/blackbox/events", "/api/blackbox/incidents"],
)
def test_unauthenticated_api_is_401_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert isinstance(response.json()["detail"], str)


def test_unauthenticated_api_post_is_401_not_a_redirect(client: TestClient) -> None:
    response = client.post("/api/assets", json={"code": "X", "name": "X", "asset_type": "pump"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "path_and_query",
    ["/twins", "/twins/assets/3", "/blackbox?category=AUTH&severity=INFO", "/twins?lang=ar"],
)
def test_unauthenticated_page_redirects_to_login_with_next(
    client: TestClient, path_and_query: str
) -> None:
    response = client.get(path_and_query, follow_redirects=False)
    assert_login_redirect(response, path_and_query)
    # The query string is percent-encoded inside `next`, so it cannot leak into /login's own.
    raw_query = urlsplit(response.headers["location"]).query
    assert raw_query.count("=") == 1 and "&" not in raw_query
    assert raw_query.startswith("next=%2F")


def test_unauthenticated_htmx_request_gets_hx_redirect_to_the_current_page(
    client: TestClient,
) -> None:
    response = client.get(
        "/twins/assets/3",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/twins/assets/3"},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=%2Ftwins%2Fassets%2F3"


def test_htmx_redirect_ignores_a_foreign_current_url(client: TestClient) -> None:
    response = client.get(
        "/twins/assets/3",
        headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/phish"},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=%2Ftwins%2Fassets%2F3"


def test_full_round_trip_login_returns_to_the_requested_page(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    asset = tenant_a.assets[0]
    redirect = client.get(f"/twins/assets/{asset.id}", follow_redirects=False)
    next_url = parse_qs(urlsplit(redirect.headers["location"]).query)["next"][0]
    login_page = client.get(redirect.headers["location"])
    assert f'name="next" value="{next_url}"' in login_page.text
    response = form_login(client, tenant_a.users["viewer"].email, next=next_url)
    assert response.headers["location"] == f"/twins/assets/{asset.id}"
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert f'data-asset-id="{asset.id}"' in page.text


def test_a_cross_site_login_form_is_refused(client: TestClient, tenant_a: TenantWorld) -> None:
    response = client.post(
        "/login",
        data={"email": tenant_a.admin.email, "password": PASSWORD},
        headers={"Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "optria_session" not in response.cookies
    same_site = client.post(
        "/login",
        data={"email": tenant_a.admin.email, "password": PASSWORD},
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert same_site.status_code == 303
