#!/usr/bin/env python3
"""Measure the demo's alarm behaviour and the alarm scanner's cost per tick (DESIGN.md §14).

(a) Demo alarms: the seeded limit table (webapp/demo/seed.py `demo_limits`) evaluated with
    `evaluate_all` over the demo source's readings of every ARAMCO_DEMO signal, at the 1-minute
    history cadence and at the live cadence (`--live-seconds`, readings interpolated between
    minutes exactly as `fetch_latest` computes them), and again without deadbands and delays to
    show what they prevent. Reported: activations per hour (mean, the busiest clock hour, the
    busiest 60 minutes), the share of time 0, 1–3 or more than 3 assets are in alarm, and the
    limits that chatter (≥ 3 activations within 60 s). Evaluation starts two hours before the
    span, so the span opens with the alarms the plant would already have.

    At the live cadence only the readings that can change a limit's state are handed to
    `evaluate_all`: of each run of readings on the same side of the limit's threshold and clear
    point, the first, the last and the first one its on- or off-delay has elapsed at. The other
    readings of a run repeat what the run's first one did, so the transitions are the same;
    the 1-minute cadence checks that claim against the uncompressed evaluation.

(b) Scanner: a migrated database (SQLite in a temporary file, or a scratch database on the
    PostgreSQL server of `--database-url`, dropped afterwards) with a few tenants whose demo
    integrations carry `--limits` limits (three levels per signal), created through the
    services as an engineer would; then a `LiveHub` and a `Scanner` as webapp/main.py builds
    them, ticking every `--interval` seconds. Reported: median and p95 of `TickReport.seconds`
    (the target is ≤ 50 ms per tick at 1,000 limits).

Usage: python scripts/bench_alarms.py [--days 7] [--start 2026-01-05] [--live-seconds 2]
       [--limits 1000] [--tenants 3] [--ticks 30] [--interval 2]
       [--database-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]
       [--skip-demo] [--skip-scanner]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url  # noqa: E402

from scripts.benchlib import bench_tenant, scratch_database  # noqa: E402
from webapp.alarms.evaluation import (  # noqa: E402
    Level,
    LimitRule,
    LimitState,
    Reading,
    Transition,
    evaluate_all,
)
from webapp.alarms.kpis import Activation, chattering_limits  # noqa: E402
from webapp.connectors.demo import demo_values  # noqa: E402
from webapp.demo.seed import (  # noqa: E402
    COMMON_SIGNALS,
    DEMO_ASSETS,
    SIGNALS_BY_TYPE,
    DemoLimit,
    demo_limits,
)
from webapp.series import datetime_to_ns, ns_to_datetime  # noqa: E402

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
WARM_UP_NS = 2 * HOUR_NS


# --- (a) the demo's alarms -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoSignal:
    asset: str
    tag: str
    limits: tuple[DemoLimit, ...]


def demo_signals() -> list[DemoSignal]:
    """Every ARAMCO_DEMO signal with its seeded limits, as the seed maps them."""
    return [
        DemoSignal(code, f"PI:{code}.{suffix}", demo_limits(metric, asset_type))
        for code, _name, asset_type, *_ in DEMO_ASSETS
        for metric, suffix, _unit in COMMON_SIGNALS + SIGNALS_BY_TYPE.get(asset_type, ())
    ]


def rule_of(limit: DemoLimit, *, bare: bool = False) -> LimitRule:
    """The scanner's rule for a seeded limit; `bare`: the same threshold without deadband and
    delays."""
    rule = LimitRule(
        Level(limit.level), limit.threshold, limit.deadband, limit.on_delay_seconds,
        limit.off_delay_seconds,
    )
    return replace(rule, deadband=0.0, on_delay_seconds=0, off_delay_seconds=0) if bare else rule


def deciding_readings(ts: np.ndarray, values: np.ndarray, rule: LimitRule) -> np.ndarray:
    """Indices of the readings that can change the limit's state (see the module docstring)."""
    if rule.level.is_high:
        breached, cleared = values >= rule.threshold, values < rule.threshold - rule.deadband
    else:
        breached, cleared = values <= rule.threshold, values > rule.threshold + rule.deadband
    side = np.where(breached, 2, np.where(cleared, 0, 1)).astype(np.int8)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(side)) + 1))
    ends = np.concatenate((starts[1:], [side.size]))
    keep = [starts, ends - 1]
    for which, delay in ((2, rule.on_delay_seconds), (0, rule.off_delay_seconds)):
        runs = side[starts] == which
        elapsed = np.searchsorted(ts, ts[starts[runs]] + int(delay * SECOND_NS), side="left")
        keep.append(elapsed[elapsed < ends[runs]])
    return np.unique(np.concatenate(keep))


def transitions(
    rule: LimitRule, ts: np.ndarray, values: np.ndarray, *, compress: bool
) -> list[tuple[int, Transition]]:
    """(ns, transition) of one limit over readings `ts`/`values`, by `evaluate_all`."""
    picked = deciding_readings(ts, values, rule) if compress else np.arange(ts.size)
    readings = [
        Reading(ns_to_datetime(ns), value)
        for ns, value in zip(ts[picked].tolist(), values[picked].tolist(), strict=True)
    ]
    _, found = evaluate_all(rule, LimitState(), readings)
    return [(datetime_to_ns(reading.timestamp), transition) for reading, transition in found]


@dataclass(frozen=True, slots=True)
class AlarmFigures:
    label: str
    activations: int
    per_hour: float
    busiest_clock_hour: int
    busiest_60_minutes: int
    in_alarm_shares: tuple[float, float, float]  # of the time: 0, 1–3, > 3 assets in alarm
    most_in_alarm: int
    chattering: list[str]
    quick_repeats: int  # activations within 10 minutes of the same limit's previous one


def figures(
    label: str, signals: list[DemoSignal], start_ns: int, end_ns: int, step_ns: int,
    *, bare: bool, compress: bool,
) -> tuple[AlarmFigures, dict[str, list[tuple[int, Transition]]]]:
    """Every limit over readings every `step_ns` of [start, end) (after the warm-up), and the
    transitions of each limit by name ("PI:P-101.VIB hi"). Hours count from `start_ns`."""
    ts = np.arange(start_ns - WARM_UP_NS, end_ns, step_ns, dtype=np.int64)
    counted = ts >= start_ns
    in_alarm = {signal.asset: np.zeros(ts.size, dtype=bool) for signal in signals}
    activations: list[Activation] = []
    names: list[str] = []
    quick_repeats = 0
    found_by_limit: dict[str, list[tuple[int, Transition]]] = {}
    for signal in signals:
        values = demo_values(signal.tag, ts)
        for limit in signal.limits:
            found = transitions(rule_of(limit, bare=bare), ts, values, compress=compress)
            name = f"{signal.tag} {limit.level}"
            found_by_limit[name] = found
            activated = np.array([ns for ns, t in found if t is Transition.activated], np.int64)
            cleared = np.array([ns for ns, t in found if t is Transition.cleared], np.int64)
            # Active at t: more activations than clears at or before t.
            active = np.searchsorted(activated, ts, "right") > np.searchsorted(cleared, ts, "right")
            in_alarm[signal.asset] |= active
            counted_activations = activated[activated >= start_ns]
            quick_repeats += int(np.count_nonzero(np.diff(counted_activations) <= 10 * MINUTE_NS))
            names.append(name)
            activations.extend(
                Activation(len(names) - 1, ns_to_datetime(int(ns))) for ns in counted_activations
            )
    at = np.sort(np.array([datetime_to_ns(a.at) for a in activations], dtype=np.int64))
    hours = (end_ns - start_ns) / HOUR_NS
    by_clock_hour = np.bincount((at - start_ns) // HOUR_NS, minlength=int(np.ceil(hours)))
    in_60_minutes = np.searchsorted(at, at + HOUR_NS, "left") - np.arange(at.size)
    assets = np.sum(list(in_alarm.values()), axis=0)[counted]
    shares = (
        float(np.mean(assets == 0)),
        float(np.mean((assets >= 1) & (assets <= 3))),
        float(np.mean(assets > 3)),
    )
    return AlarmFigures(
        label=label,
        activations=int(at.size),
        per_hour=at.size / hours,
        busiest_clock_hour=int(by_clock_hour.max(initial=0)),
        busiest_60_minutes=int(in_60_minutes.max(initial=0)),
        in_alarm_shares=shares,
        most_in_alarm=int(assets.max(initial=0)),
        chattering=[names[i] for i in chattering_limits(activations)],
        quick_repeats=quick_repeats,
    ), found_by_limit


def run_demo(args: argparse.Namespace) -> None:
    signals = demo_signals()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    start_ns = datetime_to_ns(start)
    end_ns = start_ns + int(args.days * 24 * HOUR_NS)
    live_ns = int(args.live_seconds * SECOND_NS)
    limits = sum(len(signal.limits) for signal in signals)
    print(f"(a) demo alarms: {len(signals)} signals, {limits} seeded limits, "
          f"{args.days:g} days from {start:%Y-%m-%d %H:%M} UTC")  # fmt: skip

    rows = []
    began = time.perf_counter()
    minute, full = figures("seeded, 60 s", signals, start_ns, end_ns, MINUTE_NS,
                           bare=False, compress=False)  # fmt: skip
    minute_compressed, compressed = figures("seeded, 60 s", signals, start_ns, end_ns,
                                            MINUTE_NS, bare=False, compress=True)  # fmt: skip
    if compressed != full or minute_compressed != minute:
        raise SystemExit("the compressed evaluation differs from the full one: a bug")
    rows.append(minute)
    rows.append(figures(f"seeded, {args.live_seconds:g} s", signals, start_ns, end_ns, live_ns,
                        bare=False, compress=True)[0])  # fmt: skip
    rows.append(figures("no deadband/delays, 60 s", signals, start_ns, end_ns, MINUTE_NS,
                        bare=True, compress=True)[0])  # fmt: skip
    rows.append(figures(f"no deadband/delays, {args.live_seconds:g} s", signals, start_ns,
                        end_ns, live_ns, bare=True, compress=True)[0])  # fmt: skip
    seconds = time.perf_counter() - began

    print(f"{'readings':<28}{'activ.':>7}{'/hour':>7}{'max clock h':>12}{'max 60 min':>11}"
          f"{'0 in alarm':>11}{'1–3':>8}{'>3':>7}{'most':>6}{'chattering':>11}"
          f"{'repeats':>8}")  # fmt: skip
    for row in rows:
        zero, some, many = row.in_alarm_shares
        print(f"{row.label:<28}{row.activations:>7}{row.per_hour:>7.2f}"
              f"{row.busiest_clock_hour:>12}{row.busiest_60_minutes:>11}{zero:>11.1%}"
              f"{some:>8.1%}{many:>7.1%}{row.most_in_alarm:>6}"
              f"{len(row.chattering):>11}{row.quick_repeats:>8}")  # fmt: skip
    print("chattering: limits with ≥ 3 activations within 60 s; repeats: activations within "
          "10 min of the same limit's previous one")
    print(f"(computed in {seconds:.1f} s; the 60 s figures were checked against an "
          "evaluation of every reading)")


# --- (b) the scanner's cost ----------------------------------------------------------------

# Three levels per signal; thresholds clear of the demo's normal bands (vibration here plays
# group 2, as the bench's assets are "P-…" pumps).
BENCH_SIGNALS = (
    ("vibration_rms", "VIB", "mm/s", (("lo", 0.1), ("hi", 2.8), ("hihi", 4.5))),
    ("temperature", "TEMP", "°C", (("lo", 20.0), ("hi", 95.0), ("hihi", 105.0))),
    ("pressure", "PRES", "bar", (("lo", 6.0), ("hi", 28.0), ("hihi", 32.0))),
)
LEVEL_PRIORITY = {"lo": "low", "hi": "medium", "hihi": "high"}


def populate(factory, settings, *, limits: int, tenants: int) -> int:  # type: ignore[no-untyped-def]
    """Tenants with a demo integration each, assets, mappings and `limits` limits, through the
    services. Returns the number of signals."""
    from webapp.alarms.schemas import LimitCreate
    from webapp.alarms.service import create_limit
    from webapp.assets.schemas import AssetCreate
    from webapp.assets.service import create_asset
    from webapp.db import tenant_session
    from webapp.integrations.schemas import MappingCreate
    from webapp.integrations.service import SourceAccess, create_mapping

    kinds = len(BENCH_SIGNALS)
    levels = [(signal, level) for signal in range(-(-limits // 3)) for level in range(3)][:limits]
    signal_count = levels[-1][0] + 1 if levels else 0
    asset_count = -(-signal_count // kinds)
    per_tenant = -(-asset_count // tenants)  # whole assets per tenant
    for t in range(tenants):
        assets = range(t * per_tenant, min(asset_count, (t + 1) * per_tenant))
        if not assets:
            break
        tenant_id, integration_id = bench_tenant(factory, SourceAccess.from_settings(settings), t)
        with tenant_session(factory, tenant_id) as session:
            mappings: dict[int, int] = {}
            for asset_index in assets:
                code = f"P-{asset_index:03d}"
                asset = create_asset(session, AssetCreate(
                    code=code, name=f"Pump {asset_index}", asset_type="centrifugal_pump",
                ), actor_id=None)  # fmt: skip
                for kind, (metric, suffix, unit, _) in enumerate(BENCH_SIGNALS):
                    signal = asset_index * kinds + kind
                    if signal >= signal_count:
                        break
                    mapping = create_mapping(session, MappingCreate(
                        asset_id=asset.id, integration_id=integration_id,
                        internal_metric_name=metric, external_tag=f"PI:{code}.{suffix}",
                        unit=unit,
                    ), actor_id=None)  # fmt: skip
                    mappings[signal] = mapping.id
            for signal, level_index in levels:
                if signal not in mappings:
                    continue
                level, threshold = BENCH_SIGNALS[signal % kinds][3][level_index]
                create_limit(session, LimitCreate(
                    mapping_id=mappings[signal], level=level, threshold=threshold,
                    deadband=0.3, on_delay_seconds=180, off_delay_seconds=120,
                    priority=LEVEL_PRIORITY[level],
                ), actor_id=None)  # fmt: skip
    return signal_count


@dataclass(frozen=True, slots=True)
class TickTimes:
    ticks: list[float]  # TickReport.seconds of each tick after the first
    plan: list[float]  # reading the limits of every tenant, alone
    evaluation: list[float]  # evaluating them against the feeds' readings, alone


async def tick_times(factory, engine, settings, *, ticks: int, interval: float) -> TickTimes:  # type: ignore[no-untyped-def]
    """Run a hub and a scanner as the app does. The first tick attaches every feed and has no
    readings yet, so it is left out. Then a tick's two parts are timed on their own (the
    scanner's private steps, called with the event loop blocked, so no hub poll interleaves),
    to show where its time goes."""
    from webapp.integrations.service import SourceAccess
    from webapp.live.hub import LiveHub
    from webapp.scanner import Leadership, Scanner
    from webapp.tenancy.service import live_credentials

    hub = LiveHub(interval=interval, sources=SourceAccess.from_settings(settings),
                  check_credentials=partial(live_credentials, factory))  # fmt: skip
    scanner = Scanner(session_factory=factory, hub=hub, interval=interval,
                      leadership=Leadership(engine))  # fmt: skip
    times = TickTimes([], [], [])
    try:
        next_tick = time.monotonic()
        for index in range(ticks + 1):
            report = await scanner.tick()
            if index:
                times.ticks.append(report.seconds)
            # Pace like the scanner's own loop, so the hub's polls run in between.
            next_tick += interval
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        for _ in range(min(ticks, 10)):
            began = time.perf_counter()
            plan = scanner._targets()
            planned = time.perf_counter()
            for targets in plan.values():
                scanner._evaluate(targets)
            times.plan.append(planned - began)
            times.evaluation.append(time.perf_counter() - planned)
            await asyncio.sleep(interval)  # new readings for the next round
    finally:
        await scanner.aclose()
        await hub.aclose()
    return times


def run_scanner(args: argparse.Namespace) -> None:
    from webapp.cli import migrate
    from webapp.config import Settings
    from webapp.connectors.registry import close_all_connectors
    from webapp.db import create_db_engine, create_session_factory

    with scratch_database(args.database_url) as url:
        settings = Settings(database_url=url, secret_key="bench-secret", demo_mode=True,
                            stream_interval_seconds=args.interval)  # fmt: skip
        migrate(settings)
        engine = create_db_engine(url)
        try:
            factory = create_session_factory(engine)
            began = time.perf_counter()
            signals = populate(factory, settings, limits=args.limits, tenants=args.tenants)
            built = time.perf_counter() - began

            async def measure() -> TickTimes:
                try:
                    return await tick_times(factory, engine, settings, ticks=args.ticks,
                                            interval=args.interval)  # fmt: skip
                finally:
                    await close_all_connectors()

            times = asyncio.run(measure())
        finally:
            engine.dispose()
    backend = make_url(url).get_backend_name()
    print(f"(b) scanner on {backend}: {args.limits} limits on {signals} signals, "
          f"{args.tenants} tenants (built in {built:.1f} s), {len(times.ticks)} ticks every "
          f"{args.interval:g} s")
    print(f"{'ms':<34}{'median':>8}{'p95':>8}{'max':>8}")
    for label, seconds in (
        ("per tick (TickReport.seconds)", times.ticks),
        ("  reading the limits, alone", times.plan),
        ("  evaluating them, alone", times.evaluation),
    ):
        ms = sorted(1000 * s for s in seconds)
        p95 = ms[min(len(ms) - 1, int(np.ceil(0.95 * len(ms))) - 1)]
        print(f"{label:<34}{statistics.median(ms):>8.1f}{p95:>8.1f}{ms[-1]:>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0, help="demo span (default 7)")
    parser.add_argument("--start", default="2026-01-05", help="demo span start, UTC")
    parser.add_argument("--live-seconds", type=float, default=2.0,
                        help="live reading cadence (default 2)")  # fmt: skip
    parser.add_argument("--limits", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--interval", type=float, default=2.0, help="scanner tick, seconds")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server URL (a scratch database is created on it); "
                             "default: SQLite in a temporary file")  # fmt: skip
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-scanner", action="store_true")
    args = parser.parse_args()
    if not args.skip_demo:
        run_demo(args)
    if not args.skip_scanner:
        run_scanner(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
