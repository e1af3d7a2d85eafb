"""A mapping's engineering range over the mappings API (DESIGN.md §18, §5, §16), both backends:
`range_low` and `range_high` are accepted on create and PATCH, returned and listed, 422 naming
the field unless low < high after the change (one end against the stored other), audited field
by field, and another tenant's mapping is a 404 that changes nothing. The database keeps the
order too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers
from tests.peers import add_integration, add_mapping, events, mapping_rows
from webapp.integrations.models import ExternalSignalMapping


@dataclass
class World:
    client: TestClient
    engine: Engine
    a: TenantWorld
    integration: int
    engineer: dict[str, str]


@pytest.fixture
def world(
    client: TestClient, owner_engine: Engine, session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> World:
    integration = add_integration(session_factory, tenant_a.tenant.id, type="demo", name="Demo",
                                  config={})
    engineer = bearer_headers(client, tenant_a.users["engineer"].email)
    return World(client, owner_engine, tenant_a, integration, engineer)


def body(world: World, **overrides: Any) -> dict[str, Any]:
    return {
        "asset_id": world.a.assets[0].id, "integration_id": world.integration,
        "internal_metric_name": "pressure", "external_tag": "PI:P-101.PRES", "unit": "bar",
        **overrides,
    }


def config_events(world: World) -> list[dict[str, Any]]:
    return events(world.engine, tenant_id=world.a.tenant.id, category="CONFIG")


def stored(world: World, mapping_id: int) -> tuple[float | None, float | None]:
    row = next(r for r in mapping_rows(world.engine) if r["id"] == mapping_id)
    return row["range_low"], row["range_high"]


def create(world: World, **overrides: Any) -> int:
    response = world.client.post("/api/mappings", json=body(world, **overrides),
                                 headers=world.engineer)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_refused(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(error["loc"] == ["body", field] for error in detail), detail


# --- create --------------------------------------------------------------------------------------


def test_create_accepts_returns_lists_and_audits_the_range(world: World) -> None:
    start = len(config_events(world))
    response = world.client.post("/api/mappings", json=body(world, range_low=0, range_high=16.5),
                                 headers=world.engineer)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["range_low"], created["range_high"]) == (0.0, 16.5)
    assert stored(world, created["id"]) == (0.0, 16.5)
    listed = world.client.get("/api/mappings", headers=world.engineer).json()["mappings"]
    assert [(m["range_low"], m["range_high"]) for m in listed] == [(0.0, 16.5)]

    (event,) = config_events(world)[start:]
    assert event["source_type"] == "MAPPING_CREATED"
    assert event["payload"]["changes"]["range_low"] == [None, 0.0]
    assert event["payload"]["changes"]["range_high"] == [None, 16.5]


def test_create_without_a_range_leaves_both_ends_unset(world: World) -> None:
    start = len(config_events(world))
    mapping_id = create(world)
    assert stored(world, mapping_id) == (None, None)
    listed = world.client.get("/api/mappings", headers=world.engineer).json()["mappings"]
    assert (listed[0]["range_low"], listed[0]["range_high"]) == (None, None)
    (event,) = config_events(world)[start:]
    assert "range_low" not in event["payload"]["changes"]  # nothing changed there


def test_create_with_one_end_is_fine(world: World) -> None:
    low_only = create(world, range_low=-1.5)
    high_only = create(world, internal_metric_name="temperature", range_high=120)
    assert stored(world, low_only) == (-1.5, None)
    assert stored(world, high_only) == (None, 120.0)


@pytest.mark.parametrize(
    ("range_low", "range_high"), [(10, 10), (10, 0), (-1, -2), (0.5, 0.4999)]
)
def test_create_out_of_order_is_422_naming_range_high(
    world: World, range_low: float, range_high: float
) -> None:
    start = len(config_events(world))
    response = world.client.post(
        "/api/mappings", json=body(world, range_low=range_low, range_high=range_high),
        headers=world.engineer,
    )
    assert_refused(response, "range_high")
    assert "greater than range_low" in response.json()["detail"][0]["msg"]
    assert mapping_rows(world.engine) == []
    assert config_events(world)[start:] == []


@pytest.mark.parametrize("field", ["range_low", "range_high"])
def test_ends_must_be_finite_numbers(world: World, field: str) -> None:
    headers = {**world.engineer, "Content-Type": "application/json"}
    a = world.a.assets[0].id
    for value in ("NaN", "Infinity", "-Infinity", '"high"', "[1]"):
        content = (
            f'{{"asset_id": {a}, "integration_id": {world.integration}, '
            f'"internal_metric_name": "m", "external_tag": "T", "{field}": {value}}}'
        )
        response = world.client.post("/api/mappings", content=content, headers=headers)
        assert response.status_code == 422, (field, value)
        assert any(e["loc"][-1] == field for e in response.json()["detail"]), (field, value)
    assert mapping_rows(world.engine) == []


# --- PATCH ---------------------------------------------------------------------------------------


def patch(world: World, mapping_id: int, change: dict[str, Any]):  # type: ignore[no-untyped-def]
    return world.client.patch(f"/api/mappings/{mapping_id}", json=change,
                              headers=world.engineer)


def test_patch_sets_moves_and_clears_ends_each_change_audited(world: World) -> None:
    mapping_id = create(world)
    engineer_id = world.a.users["engineer"].id
    steps: list[tuple[dict[str, Any], tuple[float | None, float | None], dict[str, list]]] = [
        ({"range_low": 0, "range_high": 10}, (0.0, 10.0),
         {"range_low": [None, 0.0], "range_high": [None, 10.0]}),
        ({"range_high": 25.5}, (0.0, 25.5), {"range_high": [10.0, 25.5]}),
        ({"range_low": 25.4}, (25.4, 25.5), {"range_low": [0.0, 25.4]}),
        ({"range_low": None}, (None, 25.5), {"range_low": [25.4, None]}),
        # With the low end unset, any high end will do.
        ({"range_high": -100}, (None, -100.0), {"range_high": [25.5, -100.0]}),
        ({"range_high": None, "range_low": 1e6}, (1e6, None),
         {"range_low": [None, 1e6], "range_high": [-100.0, None]}),
        ({"range_low": None}, (None, None), {"range_low": [1e6, None]}),
    ]
    for change, expected, changes in steps:
        start = len(config_events(world))
        response = patch(world, mapping_id, change)
        assert response.status_code == 200, (change, response.text)
        assert (response.json()["range_low"], response.json()["range_high"]) == expected
        assert stored(world, mapping_id) == expected
        (event,) = config_events(world)[start:]
        assert event["source_type"] == "MAPPING_UPDATED"
        assert event["payload"] == {
            "user_id": engineer_id, "object": "mapping", "object_id": mapping_id,
            "changes": changes,
        }

    # The same values again change nothing and record nothing.
    start = len(config_events(world))
    assert patch(world, mapping_id, {"range_low": None}).status_code == 200
    assert config_events(world)[start:] == []


def test_patch_of_one_end_is_checked_against_the_stored_other_end(world: World) -> None:
    mapping_id = create(world, range_low=0, range_high=10)
    start = len(config_events(world))
    for change, field in (
        ({"range_low": 10}, "range_low"),
        ({"range_low": 12.5}, "range_low"),
        ({"range_high": 0}, "range_high"),
        ({"range_high": -3}, "range_high"),
        ({"range_low": 20, "range_high": 15}, "range_high"),
        ({"range_low": 5, "range_high": 5}, "range_high"),
        # Other fields in the same PATCH are not applied either.
        ({"range_low": 11, "unit": "kPa"}, "range_low"),
    ):
        response = patch(world, mapping_id, change)
        assert_refused(response, field)
        assert stored(world, mapping_id) == (0.0, 10.0), change
    refusal = patch(world, mapping_id, {"range_low": 12.5}).json()["detail"][0]["msg"]
    assert refusal == "range_low (12.5) must be less than range_high (10)"
    assert next(r for r in mapping_rows(world.engine))["unit"] == "bar"
    assert config_events(world)[start:] == []

    # Moving both ends past each other at once is fine when the result is in order.
    assert patch(world, mapping_id, {"range_low": 20, "range_high": 30}).status_code == 200
    assert stored(world, mapping_id) == (20.0, 30.0)


def test_patch_ends_must_be_finite_numbers(world: World) -> None:
    mapping_id = create(world, range_low=0, range_high=10)
    headers = {**world.engineer, "Content-Type": "application/json"}
    for field in ("range_low", "range_high"):
        for value in ("NaN", "Infinity", '"x"'):
            response = world.client.patch(f"/api/mappings/{mapping_id}",
                                          content=f'{{"{field}": {value}}}', headers=headers)
            assert response.status_code == 422, (field, value)
            assert any(e["loc"][-1] == field for e in response.json()["detail"])
    assert stored(world, mapping_id) == (0.0, 10.0)


def test_viewers_may_not_set_a_range(world: World) -> None:
    mapping_id = create(world)
    viewer = bearer_headers(world.client, world.a.users["viewer"].email)
    response = world.client.patch(f"/api/mappings/{mapping_id}",
                                  json={"range_low": 0, "range_high": 1}, headers=viewer)
    assert response.status_code == 403
    assert stored(world, mapping_id) == (None, None)


def test_another_tenants_mapping_is_404_and_unchanged(
    world: World, session_factory: sessionmaker[Session], tenant_b: TenantWorld
) -> None:
    b_integration = add_integration(session_factory, tenant_b.tenant.id, type="demo",
                                    name="B", config={})
    theirs = add_mapping(session_factory, tenant_b.tenant.id, asset_id=tenant_b.assets[0].id,
                         integration_id=b_integration, metric="pressure", tag="B.PRES")
    before_rows, before_events = mapping_rows(world.engine), events(world.engine)
    for change in ({"range_low": 0, "range_high": 1}, {"range_low": 5, "range_high": 1}):
        response = patch(world, theirs, change)
        assert response.status_code == 404, response.text
    assert patch(world, 2_000_000_000, {"range_low": 0}).status_code == 404
    assert mapping_rows(world.engine) == before_rows
    assert events(world.engine) == before_events


def test_the_database_keeps_the_ends_in_order(world: World) -> None:
    mapping_id = create(world, range_low=0, range_high=10)
    table = ExternalSignalMapping.__table__
    with pytest.raises(IntegrityError), world.engine.begin() as connection:
        connection.execute(
            update(table).where(table.c.id == mapping_id).values(range_low=10.0)
        )
    assert stored(world, mapping_id) == (0.0, 10.0)
