"""/openapi.json (DESIGN.md §5): public; bearer scheme on every /api/* operation but the token."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

TOKEN_OPERATION = ("post", "/api/auth/token")
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def spec(client: TestClient) -> dict:
    response = client.get("/openapi.json")  # no credentials at all
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def bearer_scheme_names(spec: dict) -> set[str]:
    schemes = spec["components"]["securitySchemes"]
    return {
        name
        for name, scheme in schemes.items()
        if (scheme["type"] == "oauth2" and "password" in scheme.get("flows", {}))
        or (scheme["type"] == "http" and scheme.get("scheme", "").lower() == "bearer")
    }


def test_openapi_is_public_and_describes_the_app(spec: dict) -> None:
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "OPTRIA IQ"


def test_password_flow_points_at_the_token_endpoint(spec: dict) -> None:
    schemes = spec["components"]["securitySchemes"]
    oauth2 = [s for s in schemes.values() if s["type"] == "oauth2"]
    assert oauth2, schemes
    assert oauth2[0]["flows"]["password"]["tokenUrl"] == "/api/auth/token"


def test_every_api_operation_but_the_token_one_requires_the_bearer_scheme(spec: dict) -> None:
    names = bearer_scheme_names(spec)
    assert names
    api_operations = [(m, p, op) for m, p, op in operations(spec) if p.startswith("/api/")]
    assert len(api_operations) >= 6
    for method, path, operation in api_operations:
        declared = {name for requirement in operation.get("security", []) for name in requirement}
        if (method, path) == TOKEN_OPERATION:
            assert not declared, "the token endpoint is how a client gets a token"
        else:
            assert declared & names, f"{method.upper()} {path} does not declare the bearer scheme"


def test_token_endpoint_takes_an_oauth2_password_form(spec: dict) -> None:
    operation = spec["paths"]["/api/auth/token"]["post"]
    content = operation["requestBody"]["content"]
    assert list(content) == ["application/x-www-form-urlencoded"]
    reference = content["application/x-www-form-urlencoded"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    assert {"username", "password"} <= set(schema["required"])
    token_schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]
    token_schema = spec["components"]["schemas"][token_schema_ref["$ref"].rsplit("/", 1)[-1]]
    assert {"access_token", "token_type", "expires_in"} <= set(token_schema["properties"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/healthz"),
        ("get", "/api/twins/assets"),
        ("post", "/api/assets"),
        ("get", "/api/assets/{asset_id}"),
        ("get", "/api/blackbox/events"),
        ("get", "/api/blackbox/incidents"),
        ("post", "/api/auth/token"),
    ],
)
def test_documented_operations(spec: dict, method: str, path: str) -> None:
    assert method in spec["paths"].get(path, {}), f"{method.upper()} {path} missing"


def test_blackbox_events_documents_its_filters(spec: dict) -> None:
    parameters = {p["name"]: p for p in spec["paths"]["/api/blackbox/events"]["get"]["parameters"]}
    assert {"category", "severity", "asset_id", "since", "limit"} <= set(parameters)
    limit = parameters["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 1000, 100)


def test_html_routes_are_not_in_the_api_description(spec: dict) -> None:
    for path in spec["paths"]:
        assert path.startswith("/api/") or path == "/healthz", path


def test_declared_security_matches_behaviour(client: TestClient, spec: dict) -> None:
    """Every operation that declares the bearer scheme really answers 401 without it."""
    names = bearer_scheme_names(spec)
    checked = 0
    for method, path, operation in operations(spec):
        declared = {name for requirement in operation.get("security", []) for name in requirement}
        if not declared & names:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(method.upper(), url, headers={"Accept": "application/json"})
        assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code}"
        assert response.headers["www-authenticate"] == "Bearer"
        checked += 1
    assert checked >= 5
