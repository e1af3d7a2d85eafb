#!/usr/bin/env python3
"""Measure one asset-health pass (DESIGN.md §15) over a large plant on the demo source.

A migrated database (SQLite in a temporary file, or a scratch database on the PostgreSQL server
of `--database-url`, dropped afterwards) with `--tenants` tenants holding `--assets` assets in
all, each asset with the seed's three common signals (vibration_rms mm/s, temperature °C,
pressure bar) mapped to its tenant's demo integration, and the seed's limits (webapp/demo/seed.py
`demo_limits`) on the signals of every `--limit-every`-th asset, created through the services as
an engineer would. A pump in four is a compressor ("C-…", machine group 1), the rest are pumps
("P-…", group 2). Then a `HealthMonitor` as webapp/main.py builds it runs passes with `now`
advancing by `--interval` (the health interval) per pass, as the scanner's clock would, so the
store rule (a row when the score moves, else every 15 minutes) behaves as in production.

Reported, each pass's `HealthReport.seconds` (wall) beside its CPU time (`time.process_time`,
every thread of the process: the monitor reads and writes the database in worker threads):
- the first pass alone: it reads the 7-day baseline of every signal besides its 24 h history
  (missing baselines are not capped; only refreshes of stale ones are, at
  `BASELINE_REFRESHES_PER_PASS` a pass), and how many passes read baselines before none is
  missing (warm);
- `--passes` steady passes: median, p95 and max of the seconds, with the signals read, failed
  reads, baseline reads and rows stored per pass;
- `--passes` refresh passes: the same after every cached baseline is aged past its hour, so
  each pass also re-reads `BASELINE_REFRESHES_PER_PASS` baselines, as the passes of a running
  plant do for a while each hour once the first hour's baselines expire.

The target is ≤ 2 s per steady pass at 1,000 assets on one core: the process is pinned to one
CPU (`os.sched_setaffinity`) unless `--all-cores`.

Usage: python scripts/bench_health.py [--assets 1000] [--tenants 1] [--passes 10]
       [--interval 60] [--limit-every 10] [--all-cores]
       [--database-url postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url  # noqa: E402

from scripts.benchlib import bench_tenant, scratch_database  # noqa: E402
from webapp.demo.seed import COMMON_SIGNALS, demo_limits  # noqa: E402
from webapp.health.model import foundation_of, machine_group_of  # noqa: E402

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from webapp.config import Settings
    from webapp.health.service import HealthMonitor, HealthReport

# (code prefix, asset type, name): every fourth asset a compressor, the others pumps.
KINDS = (
    ("P", "centrifugal_pump", "Pump"),
    ("P", "centrifugal_pump", "Pump"),
    ("P", "centrifugal_pump", "Pump"),
    ("C", "gas_compressor", "Compressor"),
)
WARM_PASSES_AT_MOST = 50


@dataclass(frozen=True, slots=True)
class Plant:
    assets: int
    signals: int
    limits: int


def populate(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    assets: int,
    tenants: int,
    limit_every: int,
) -> Plant:
    """Tenants with a demo integration each, their share of the assets, three mappings per
    asset and the seed's limits on every `limit_every`-th asset, through the services."""
    from webapp.alarms.schemas import LimitCreate
    from webapp.alarms.service import create_limit
    from webapp.assets.schemas import AssetCreate
    from webapp.assets.service import create_asset
    from webapp.db import tenant_session
    from webapp.integrations.schemas import MappingCreate
    from webapp.integrations.service import SourceAccess, create_mapping

    access = SourceAccess.from_settings(settings)
    per_tenant = -(-assets // tenants)  # whole assets per tenant
    made = {"assets": 0, "signals": 0, "limits": 0}
    for t in range(tenants):
        indices = range(t * per_tenant, min(assets, (t + 1) * per_tenant))
        if not indices:
            break
        tenant_id, integration_id = bench_tenant(factory, access, t)
        with tenant_session(factory, tenant_id) as session:
            for index in indices:
                prefix, asset_type, noun = KINDS[index % len(KINDS)]
                code = f"{prefix}-{index:04d}"
                asset = create_asset(session, AssetCreate(
                    code=code, name=f"{noun} {index}", asset_type=asset_type,
                    machine_group=machine_group_of(asset_type, None),
                    foundation=foundation_of(None),
                ), actor_id=None)  # fmt: skip
                for metric, suffix, unit in COMMON_SIGNALS:
                    mapping = create_mapping(session, MappingCreate(
                        asset_id=asset.id, integration_id=integration_id,
                        internal_metric_name=metric, external_tag=f"PI:{code}.{suffix}",
                        unit=unit,
                    ), actor_id=None)  # fmt: skip
                    limits = demo_limits(metric, asset_type) if index % limit_every == 0 else ()
                    for limit in limits:
                        create_limit(session, LimitCreate(
                            mapping_id=mapping.id, level=limit.level, threshold=limit.threshold,
                            deadband=limit.deadband, on_delay_seconds=limit.on_delay_seconds,
                            off_delay_seconds=limit.off_delay_seconds, priority=limit.priority,
                        ), actor_id=None)  # fmt: skip
                    made["signals"] += 1
                    made["limits"] += len(limits)
                made["assets"] += 1
    return Plant(**made)


@dataclass(frozen=True, slots=True)
class Pass:
    report: HealthReport
    cpu: float  # process CPU seconds, every thread


@dataclass
class Passes:
    first: Pass
    warm_up: list[Pass]  # the passes after the first that still read missing baselines
    steady: list[Pass]
    refresh: list[Pass]


async def timed_pass(monitor: HealthMonitor, now: datetime) -> Pass:
    cpu = time.process_time()
    report = await monitor.run_pass(now)
    return Pass(report, time.process_time() - cpu)


def age_baselines(monitor: HealthMonitor) -> None:
    """Every cached baseline past its maximum age, as an hour after it was read."""
    from webapp.health.service import BASELINE_MAX_AGE_SECONDS

    for key, (read_at, found) in monitor.baselines.items():
        monitor.baselines[key] = (read_at - BASELINE_MAX_AGE_SECONDS, found)


async def run_passes(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    passes: int,
    interval: float,
    start: datetime,
) -> Passes:
    from webapp.health.service import HealthMonitor
    from webapp.integrations.service import SourceAccess

    monitor = HealthMonitor(factory, SourceAccess.from_settings(settings))
    step = timedelta(seconds=interval)
    clock = (start + n * step for n in itertools.count())
    first = await timed_pass(monitor, next(clock))
    warm_up: list[Pass] = []
    while len(warm_up) < WARM_PASSES_AT_MOST:
        done = await timed_pass(monitor, next(clock))
        if not done.report.baseline_reads:
            break  # none missing: this pass is the first steady one
        warm_up.append(done)
    else:
        raise SystemExit(f"baselines still read after {WARM_PASSES_AT_MOST} passes")
    steady = [done]
    steady += [await timed_pass(monitor, next(clock)) for _ in range(passes - 1)]
    refresh = []
    for _ in range(passes):
        age_baselines(monitor)
        refresh.append(await timed_pass(monitor, next(clock)))
    return Passes(first, warm_up, steady, refresh)


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)]


def print_rows(label: str, rows: list[Pass]) -> None:
    seconds = [row.report.seconds for row in rows]
    cpu = [row.cpu for row in rows]
    print(f"{label}: {len(rows)} pass{'es' if len(rows) > 1 else ''}")
    print(f"  {'per pass':<26}{'median':>8}{'p95':>8}{'max':>8}")
    print(f"  {'wall s (HealthReport)':<26}{statistics.median(seconds):>8.3f}"
          f"{p95(seconds):>8.3f}{max(seconds):>8.3f}")  # fmt: skip
    print(f"  {'CPU s (process_time)':<26}{statistics.median(cpu):>8.3f}{p95(cpu):>8.3f}"
          f"{max(cpu):>8.3f}")  # fmt: skip
    print(f"  {'':<26}{'median':>8}{'min':>8}{'max':>8}")
    for name, caption in (
        ("signals", "signals read"),
        ("failed_reads", "failed reads"),
        ("baseline_reads", "baseline reads"),
        ("stored", "rows stored"),
    ):
        counts = [getattr(row.report, name) for row in rows]
        print(f"  {caption:<26}{statistics.median(counts):>8g}{min(counts):>8}{max(counts):>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--passes", type=int, default=10, help="steady passes (default 10)")
    parser.add_argument("--interval", type=float, default=60.0,
                        help="seconds `now` advances a pass (default 60)")  # fmt: skip
    parser.add_argument("--limit-every", type=int, default=10,
                        help="seed limits on every Nth asset (default 10)")  # fmt: skip
    parser.add_argument("--all-cores", action="store_true",
                        help="do not pin the process to one CPU")  # fmt: skip
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server URL (a scratch database is created on it); "
                             "default: SQLite in a temporary file")  # fmt: skip
    args = parser.parse_args()
    if args.assets < 1 or args.tenants < 1 or args.passes < 1 or args.limit_every < 1:
        parser.error("--assets, --tenants, --passes and --limit-every must be at least 1")
    pinning = "all cores" if args.all_cores else pin_to_one_core()

    from webapp.cli import migrate
    from webapp.config import Settings
    from webapp.connectors.registry import close_all_connectors
    from webapp.db import create_db_engine, create_session_factory, utcnow
    from webapp.health.service import BASELINE_REFRESHES_PER_PASS

    with scratch_database(args.database_url) as url:
        settings = Settings(database_url=url, secret_key="bench-secret", demo_mode=True,
                            health_interval_seconds=args.interval)  # fmt: skip
        migrate(settings)
        engine = create_db_engine(url)
        try:
            factory = create_session_factory(engine)
            began = time.perf_counter()
            plant = populate(factory, settings, assets=args.assets, tenants=args.tenants,
                             limit_every=args.limit_every)  # fmt: skip
            built = time.perf_counter() - began
            start = utcnow().replace(second=0, microsecond=0)

            async def measure() -> Passes:
                try:
                    return await run_passes(factory, settings, passes=args.passes,
                                            interval=args.interval, start=start)  # fmt: skip
                finally:
                    await close_all_connectors()

            passes = asyncio.run(measure())
        finally:
            engine.dispose()

    backend = make_url(url).get_backend_name()
    print(
        f"health pass on {backend}: {plant.assets} assets, {plant.signals} signals, "
        f"{plant.limits} limits, {args.tenants} tenant(s) (built in {built:.1f} s); "
        f"{pinning}; now from {start:%Y-%m-%d %H:%M} UTC, +{args.interval:g} s a pass"
    )
    print_rows("first pass (every 7-day baseline read)", [passes.first])
    print(f"warm (no baseline missing) after {1 + len(passes.warm_up)} pass(es)")
    if passes.warm_up:
        print_rows("warm-up passes after the first", passes.warm_up)
    print_rows("steady passes (no baseline due)", passes.steady)
    print_rows(f"refresh passes (every baseline stale: ≤ {BASELINE_REFRESHES_PER_PASS} "
               "re-read a pass)", passes.refresh)  # fmt: skip
    steady = statistics.median(row.report.seconds for row in passes.steady)
    print(
        f"target ≤ 2 s per steady pass: median {steady:.3f} s "
        f"({'met' if steady <= 2.0 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
