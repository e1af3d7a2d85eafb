"""The demo's alarms (DESIGN.md §14, "Demo"): the seeded limits, evaluated as the scanner does
over a day of the demo source, give an operator a steady, manageable alarm load; seeding them
is idempotent, fills gaps only, and leaves CONFIG events."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

import tests.conftest as shared
from tests.peers import events, mapping_rows, snapshot, table_rows
from webapp.alarms.evaluation import (
    Level,
    LimitRule,
    LimitState,
    Reading,
    Transition,
    evaluate_all,
)
from webapp.alarms.models import AlarmLimit
from webapp.assets.models import Asset
from webapp.connectors.demo import demo_values
from webapp.db import tenant_session
from webapp.demo.seed import (
    COMMON_SIGNALS,
    DEMO_ASSETS,
    SIGNALS_BY_TYPE,
    MappingSeedSummary,
    demo_limits,
    seed_demo_signal_mappings,
    seed_demo_tenant,
)
from webapp.series import datetime_to_ns
from webapp.tenancy.models import Tenant

DAY = datetime(2026, 3, 2, tzinfo=UTC)  # any day would do; a fixed one reproduces a failure
WARM_UP = timedelta(hours=2)  # by midnight the scanner knows the alarms already standing
MINUTE = timedelta(minutes=1)
# ISO 20816-3, rigid foundation: (B/C, C/D) in mm/s. Compressors and turbines are machine
# group 1, everything else group 2 (DESIGN.md §15 defaults).
VIBRATION_HI_HIHI = {
    "P-101": (2.8, 4.5), "P-102": (2.8, 4.5), "P-201": (2.8, 4.5),
    "C-301": (4.5, 7.1), "C-302": (4.5, 7.1), "GT-501": (4.5, 7.1),
    "E-401": (2.8, 4.5), "E-402": (2.8, 4.5), "V-601": (2.8, 4.5), "V-602": (2.8, 4.5),
}  # fmt: skip
# vibration, temperature, pressure on all 10 assets (2 + 2 + 4 levels); flow (3) on 3 pumps;
# power (2) and speed (3) on 2 compressors and the turbine; dP (2) on 2 exchangers; level (4)
# on 2 separators.
SEEDED_LIMITS = 10 * 8 + 3 * 3 + 3 * 5 + 2 * 2 + 2 * 4


# --- a day of the demo, evaluated ------------------------------------------------------------


@dataclass(frozen=True)
class LimitDay:
    asset: str
    tag: str
    level: str
    activations: list[datetime]  # within DAY
    active: np.ndarray  # bool per minute of DAY: in alarm after that minute's reading


def evaluate_day(*, bare: bool) -> list[LimitDay]:
    """Every seeded limit of every demo signal over DAY's 1-minute readings, by evaluate_all;
    `bare`: the same thresholds without deadband and delays."""
    minutes = int((WARM_UP + timedelta(days=1)) / MINUTE)
    grid = [DAY - WARM_UP + i * MINUTE for i in range(minutes)]
    index = {moment: i for i, moment in enumerate(grid)}
    grid_ns = np.array([datetime_to_ns(moment) for moment in grid], dtype=np.int64)
    skip = int(WARM_UP / MINUTE)
    days = []
    for code, _name, asset_type, *_ in DEMO_ASSETS:
        for metric, suffix, _unit in COMMON_SIGNALS + SIGNALS_BY_TYPE.get(asset_type, ()):
            tag = f"PI:{code}.{suffix}"
            values = demo_values(tag, grid_ns).tolist()
            readings = [Reading(moment, value) for moment, value in zip(grid, values, strict=True)]
            for limit in demo_limits(metric, asset_type):
                rule = (
                    LimitRule(Level(limit.level), limit.threshold) if bare
                    else LimitRule(Level(limit.level), limit.threshold, limit.deadband,
                                   limit.on_delay_seconds, limit.off_delay_seconds)
                )  # fmt: skip
                _, found = evaluate_all(rule, LimitState(), readings)
                active = np.zeros(minutes, dtype=bool)
                for reading, transition in found:
                    active[index[reading.timestamp]:] = transition is Transition.activated
                activations = [r.timestamp for r, t in found if t is Transition.activated]
                activations = [at for at in activations if at >= DAY]
                days.append(LimitDay(code, tag, limit.level, activations, active[skip:]))
    return days


@pytest.fixture(scope="module")
def seeded_day() -> list[LimitDay]:
    return evaluate_day(bare=False)


@pytest.fixture(scope="module")
def bare_day() -> list[LimitDay]:
    return evaluate_day(bare=True)


def assets_in_alarm(day: list[LimitDay]) -> np.ndarray:
    """How many assets have at least one limit in alarm, per minute."""
    by_asset: dict[str, np.ndarray] = {}
    for limit in day:
        by_asset[limit.asset] = by_asset.get(limit.asset, False) | limit.active
    return np.sum(list(by_asset.values()), axis=0)


def busiest_60_minutes(day: list[LimitDay]) -> int:
    moments = sorted(at for limit in day for at in limit.activations)
    return max(
        sum(1 for later in moments[i:] if later < start + timedelta(hours=1))
        for i, start in enumerate(moments)
    )


def test_one_to_three_assets_are_in_alarm_at_every_minute(seeded_day: list[LimitDay]) -> None:
    """What an operator sees: never a quiet plant, never more than three assets in alarm;
    mostly two (an episode runs ~45 minutes, a new one starts every 24), one while an episode
    hands over to the next, three for a few minutes."""
    in_alarm = assets_in_alarm(seeded_day)
    assert in_alarm.size == 1440
    assert in_alarm.min() >= 1 and in_alarm.max() <= 3
    assert np.mean(in_alarm == 2) >= 0.6


def test_activations_stay_within_the_manageable_rate(seeded_day: list[LimitDay]) -> None:
    """ISA-18.2: ≤ 6 activations per hour per operator is manageable. Every asset has an
    episode every 4 hours (60 hi activations a day) and one episode in three also passes hihi
    (20 more); lo and lolo limits never trip."""
    per_level = Counter(limit.level for limit in seeded_day for _ in limit.activations)
    assert per_level == {"hi": 60, "hihi": 20}
    per_hour = Counter(at.hour for limit in seeded_day for at in limit.activations)
    assert sorted(per_hour) == list(range(24)), "alarms all day long"
    assert max(per_hour.values()) <= 6
    assert busiest_60_minutes(seeded_day) <= 6


def test_each_episode_activates_a_limit_once_and_nothing_chatters(
    seeded_day: list[LimitDay],
) -> None:
    """An asset's episodes are 4 hours apart, so two activations of one limit less than 3
    hours apart would be noise or a spike getting through; chattering (3 within 60 s) is far
    stricter than that."""
    for limit in seeded_day:
        for earlier, later in itertools.pairwise(limit.activations):
            assert later - earlier >= timedelta(hours=3), (limit.tag, limit.level)


def test_without_deadband_and_delays_the_same_readings_exceed_the_rate(
    bare_day: list[LimitDay],
) -> None:
    """The one-minute spikes and the noise at a limit are in the data: deadband and on-delay
    are what keep them from raising alarms."""
    per_hour = Counter(at.hour for limit in bare_day for at in limit.activations)
    assert max(per_hour.values()) > 6
    shortest = min(
        later - earlier
        for limit in bare_day
        for earlier, later in itertools.pairwise(limit.activations)
    )
    assert shortest <= timedelta(minutes=5), "a limit re-alarms within minutes"


def test_vibration_sits_in_zone_a_or_b_outside_its_alarms(seeded_day: list[LimitDay]) -> None:
    """Zone C (≥ B/C) only around a vibration alarm (its ramps included), or for a one-minute
    spike: a group-2 pump at 2.9 mm/s would stand in alarm for good."""
    grid_ns = datetime_to_ns(DAY) + np.arange(1440, dtype=np.int64) * 60_000_000_000
    vibration_hi = {limit.asset: limit for limit in seeded_day
                    if limit.tag.endswith(".VIB") and limit.level == "hi"}  # fmt: skip
    assert sorted(vibration_hi) == sorted(VIBRATION_HI_HIHI)
    for code, (b_c, _) in VIBRATION_HI_HIHI.items():
        values = demo_values(f"PI:{code}.VIB", grid_ns)
        # Five minutes either side of an alarm belong to its episode (on-delay, ramps).
        near_alarm = np.convolve(vibration_hi[code].active, np.ones(11), mode="same") > 0
        calm = ~near_alarm
        assert np.mean(values[calm] >= b_c) < 0.01, code
        assert np.median(values[calm]) < b_c - 0.5, code


# --- seeding ---------------------------------------------------------------------------------


def seed_demo(factory: sessionmaker[Session], database_url: str) -> MappingSeedSummary:
    settings = shared.test_settings(database_url, pi_base_url=None, pi_data_server=None)
    with tenant_session(factory, None) as session:
        seed_demo_tenant(session, password="demo-password")
    with tenant_session(factory, None) as session:
        return seed_demo_signal_mappings(session, settings)


def seeded_limits(engine: Engine) -> list[dict[str, Any]]:
    """Limit rows with their signal's asset code and metric."""
    codes = {row["id"]: row["code"] for row in table_rows(engine, Asset.__table__)}
    mappings = {row["id"]: row for row in mapping_rows(engine)}
    return [
        {**row, "asset": codes[mappings[row["mapping_id"]]["asset_id"]],
         "metric": mappings[row["mapping_id"]]["internal_metric_name"]}
        for row in table_rows(engine, AlarmLimit.__table__)
    ]  # fmt: skip


def test_the_seed_gives_every_demo_signal_its_limits_once(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    first = seed_demo(session_factory, database_url)
    before = snapshot(owner_engine)
    second = seed_demo(session_factory, database_url)

    assert (first.limits_created, second.limits_created) == (SEEDED_LIMITS, 0)
    assert snapshot(owner_engine) == before, "a second run writes nothing, not even events"
    limits = seeded_limits(owner_engine)
    assert len(limits) == SEEDED_LIMITS
    by_signal: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for limit in limits:
        by_signal.setdefault((limit["asset"], limit["metric"]), {})[limit["level"]] = limit
    assert len(by_signal) == len(mapping_rows(owner_engine)), "every demo signal has limits"
    for signal, levels in by_signal.items():
        assert "hi" in levels, signal
        ordered = [levels[level]["threshold"] for level in ("lolo", "lo", "hi", "hihi")
                   if level in levels]  # fmt: skip
        assert ordered == sorted(set(ordered)), f"{signal}: lolo < lo < hi < hihi"
        for limit in levels.values():
            priority = {"hihi": "high", "hi": "medium", "lo": "medium", "lolo": "high"}
            assert limit["priority"] == priority[limit["level"]]
            assert (limit["on_delay_seconds"], limit["off_delay_seconds"]) == (180, 120)
            assert limit["deadband"] > 0 and limit["is_active"] and not limit["out_of_service"]
    for code, (b_c, c_d) in VIBRATION_HI_HIHI.items():
        vibration = by_signal[(code, "vibration_rms")]
        assert {level: (row["threshold"], row["deadband"]) for level, row in vibration.items()} \
            == {"hi": (b_c, round(0.1 * b_c, 3)), "hihi": (c_d, round(0.1 * b_c, 3))}, code

    tenant_id = table_rows(owner_engine, Tenant.__table__)[0]["id"]
    created = [event for event in events(owner_engine, tenant_id=tenant_id, category="CONFIG")
               if event["source_type"] == "ALARM_LIMIT_CREATED"]  # fmt: skip
    assert sorted(event["payload"]["object_id"] for event in created) == sorted(
        limit["id"] for limit in limits
    )
    assert {event["payload"]["user_id"] for event in created} == {None}, "the seed, no person"


def test_a_reseed_keeps_an_engineers_changes_and_adds_only_what_is_missing(
    database_url: str, owner_engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    seed_demo(session_factory, database_url)
    limits = {(row["asset"], row["metric"], row["level"]): row["id"]
              for row in seeded_limits(owner_engine)}  # fmt: skip
    table = AlarmLimit.__table__
    with owner_engine.begin() as connection:
        # An engineer raised P-101's vibration hi, and P-102's pressure hi above the seeded
        # hihi (32 bar); two hihi limits are missing, as after an older seed.
        connection.execute(update(table).where(
            table.c.id == limits[("P-101", "vibration_rms", "hi")]).values(threshold=3.1))
        connection.execute(update(table).where(
            table.c.id == limits[("P-102", "pressure", "hi")]).values(threshold=33.0))
        for missing in (("P-101", "temperature", "hihi"), ("P-102", "pressure", "hihi")):
            connection.execute(table.delete().where(table.c.id == limits[missing]))

    summary = seed_demo(session_factory, database_url)

    after = {(row["asset"], row["metric"], row["level"]): row
             for row in seeded_limits(owner_engine)}  # fmt: skip
    assert summary.limits_created == 1
    assert after[("P-101", "temperature", "hihi")]["threshold"] == 105.0, "the gap is filled"
    assert ("P-102", "pressure", "hihi") not in after, "32 bar would no longer fit above 33"
    assert after[("P-101", "vibration_rms", "hi")]["threshold"] == 3.1
    assert after[("P-102", "pressure", "hi")]["threshold"] == 33.0
