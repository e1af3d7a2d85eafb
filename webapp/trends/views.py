"""/trends: several signals on one chart, each on its own engineering range (DESIGN.md §18).

`GET /trends?pen={asset_id}:{metric}&pen=…&range=100|8h|24h|7d|custom&compare=1d|7d`. Every
pen is read through the metric view's own read path (`read_series_for_user`: one SENSOR event
per read, a compared window being a read of its own); a source that is down costs its pen an
inline error, never the page. Live: the chart block re-requests itself once a minute (htmx
polling, `hx-trigger="every …"`; the drawn samples change no faster, §18) unless the window is
custom; each refresh is a new read of every pen, with its events, like reopening the view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.deps import CurrentUser, ReadPath, ReadPathDep, SessionDep, SettingsDep, db_call
from webapp.integrations.service import SourceAccess
from webapp.series import ns_to_datetime
from webapp.templating import in_locale, is_htmx, render_page
from webapp.tenancy.models import User
from webapp.timeseries.service import SeriesWindow, Signal, WindowError
from webapp.trends import service
from webapp.trends.charts import PenTrace, TrendChart, build_trend_chart
from webapp.trends.presenters import (
    COMPARE_SHIFTS,
    DEFAULT_RANGE,
    MAX_PENS,
    Compare,
    LegendEntry,
    PenError,
    PenRef,
    ReadOutcome,
    TrendRange,
    axis_span,
    compare_label,
    earlier,
    legend_entry,
    parse_pens,
    range_label,
    trend_url,
    trend_window,
    window_text,
)
from webapp.trends.service import PenSignal, history_ranges, history_values
from webapp.twin.presenters import metric_label, signal_decimals
from webapp.twin.ranges import EngineeringRange, engineering_range, needs_history
from webapp.twin.views import read_series_for_user
from webapp.types import UTCDatetime

router = APIRouter(include_in_schema=False)
# Each refresh reads every pen (a SENSOR event each): at most once a minute, when a new sample
# of a minute's cadence or a redrawn plot can be there at all.
REFRESH_AT_MOST_EVERY_SECONDS = 60.0

PenQuery = Annotated[
    list[str], Query(alias="pen", description="{asset_id}:{metric}, 1 to 8 distinct pens")
]
RangeQuery = Annotated[TrendRange, Query(alias="range", description="100, 8h, 24h, 7d or custom")]
CompareQuery = Annotated[Compare | None, Query(description="1d or 7d: that much earlier")]
FromTime = Annotated[UTCDatetime | None, Query(description="ISO 8601, with range=custom")]
ToTime = Annotated[UTCDatetime | None, Query(description="ISO 8601, with range=custom")]
TEMPLATE = "trends/index.html"


async def _read(path: ReadPath, user: User, signal: Signal, window: SeriesWindow) -> ReadOutcome:
    """One pen read with its SENSOR event; a source that is down (503) becomes the pen's error
    (its CONNECTOR event is written all the same)."""
    try:
        read = await read_series_for_user(path, user, signal, window)
    except HTTPException as exc:
        if exc.status_code != status.HTTP_503_SERVICE_UNAVAILABLE:
            raise
        return ReadOutcome(None, str(exc.detail))
    return ReadOutcome(read.series, None, read.source)


History = Sequence[float] | np.ndarray


async def _history(
    pens: list[PenSignal], reads: list[ReadOutcome], trend_range: TrendRange,
    sources: SourceAccess,
) -> list[History]:
    """Each pen's 7-day history values where its range needs them (cached per signal); a
    7-day chart is its own history; a pen whose source is down (no read, or a synthetic
    fallback) is not asked again."""
    found: list[History] = [() for _pen in pens]
    wanted: list[int] = []
    for index, (pen, read) in enumerate(zip(pens, reads, strict=True)):
        if read.series is None or not needs_history(pen.range_low, pen.range_high, pen.limits):
            continue
        if read.source != "live":
            found[index] = history_values(read.series)  # its source is down: not asked again
        elif trend_range is TrendRange.week:
            found[index] = history_ranges.remember(pen.signal, read.series)
        else:
            wanted.append(index)
    now = utcnow()
    histories = await history_ranges.get_many([pens[i].signal for i in wanted], sources, now)
    for index, history in zip(wanted, histories, strict=True):
        series = reads[index].series
        # History unreadable: the pen's own window is the best there is.
        if history is not None:
            found[index] = history
        elif series is not None:
            found[index] = history_values(series)
    return found


def _links(
    pens: list[PenRef], trend_range: TrendRange, compare: Compare | None,
    from_time: datetime | None, to_time: datetime | None,
) -> dict[str, object]:
    def url(**changes: object) -> str:
        values = {"trend_range": trend_range, "compare": compare, "from_time": from_time,
                  "to_time": to_time, **changes}
        return trend_url(pens, **values)  # type: ignore[arg-type]

    ranges = [r for r in TrendRange if r is not TrendRange.custom or r is trend_range]
    return {
        "ranges": [
            {"value": r.value, "label": range_label(r), "url": url(trend_range=r),
             "current": r is trend_range}
            for r in ranges
        ],
        "compares": [
            {"value": "", "label": None, "url": url(compare=None), "current": compare is None},
            *(
                {"value": c.value, "label": compare_label(c), "url": url(compare=c),
                 "current": c is compare}
                for c in Compare
            ),
        ],
    }


async def _trend(
    request: Request, path: ReadPath, user: User, interval_seconds: float,
    refs: list[PenRef], pens: list[PenSignal], window: SeriesWindow, trend_range: TrendRange,
    compare: Compare | None, from_time: datetime | None, to_time: datetime | None,
) -> dict[str, object]:
    locale, timezone = request.state.locale, user.tenant.timezone
    # The pens' sources are read side by side (each read is recorded by the group commit).
    reads = list(await asyncio.gather(
        *(_read(path, user, pen.signal, window) for pen in pens)
    ))
    compared: list[ReadOutcome | None] = [None] * len(pens)
    if compare is not None:
        compared = list(await asyncio.gather(
            *(_read(path, user, pen.signal, earlier(window, compare)) for pen in pens)
        ))
    histories = await _history(pens, reads, trend_range, path.sources)
    ranges = [
        engineering_range(pen.range_low, pen.range_high, pen.limits, history)
        for pen, history in zip(pens, histories, strict=True)
    ]
    start_ns, end_ns = axis_span(window, [read.series for read in reads])
    # Labels and formats in the viewer's language (the page is rendered after this).
    with in_locale(locale):
        chart, legend = _drawn(refs, pens, reads, compared, ranges, compare, start_ns, end_ns,
                               timezone, locale)
        window_start, window_end = window_text(start_ns, end_ns, timezone, locale)
    return {
        "chart": chart,
        "legend": legend,
        "range": trend_range,
        "compare": compare,
        "live": trend_range is not TrendRange.custom,
        "interval_ms": int(max(interval_seconds, REFRESH_AT_MOST_EVERY_SECONDS) * 1000),
        "self_url": trend_url(refs, trend_range=trend_range, compare=compare,
                              from_time=from_time, to_time=to_time),
        "window_start_text": window_start,
        "window_end_text": window_end,
        "window_start_iso": _iso(start_ns),
        "window_end_iso": _iso(end_ns),
    }


def _drawn(
    refs: list[PenRef], pens: list[PenSignal], reads: list[ReadOutcome],
    compared: list[ReadOutcome | None], ranges: list[EngineeringRange], compare: Compare | None,
    start_ns: int, end_ns: int, timezone: str, locale: str,
) -> tuple[TrendChart, list[LegendEntry]]:
    """The chart and its legend from what was read, each pen on its own range."""

    def trace(slot: int, read: ReadOutcome, shift: Compare | None) -> PenTrace:
        pen, (low, high, _source) = pens[slot], ranges[slot]
        return PenTrace(
            slot=slot, asset_id=pen.signal.asset_id, metric=pen.signal.metric,
            label=f"{pen.asset_code} {metric_label(pen.signal.metric)}", series=read.series,
            low=low, high=high, compare=shift.value if shift else None,
            shift_ns=int(COMPARE_SHIFTS[shift].total_seconds() * 1e9) if shift else 0,
        )

    # Compared windows first: the live pens are drawn on top of them.
    traces = [trace(i, c, compare) for i, c in enumerate(compared) if c is not None]
    traces += [trace(i, read, None) for i, read in enumerate(reads)]
    chart = build_trend_chart(
        traces, start_ns=start_ns, end_ns=end_ns, unit=pens[0].signal.unit,
        digits=signal_decimals(pens[0].signal), timezone=timezone, locale=locale,
    )
    legend = [
        legend_entry(
            slot=slot, pen=refs[slot], asset_code=pen.asset_code, unit=pen.signal.unit,
            engineering=ranges[slot], digits=signal_decimals(pen.signal), read=reads[slot],
            compared=compared[slot], compare=compare, timezone=timezone, locale=locale,
        )
        for slot, pen in enumerate(pens)
    ]
    return chart, legend


def _iso(ns: int) -> str:
    return ns_to_datetime(ns).strftime("%Y-%m-%dT%H:%M:%SZ")


def _manage_context(
    db: Session, refs: list[PenRef], pens: list[PenSignal] | None, trend_range: TrendRange,
    compare: Compare | None, from_time: datetime | None, to_time: datetime | None,
) -> dict[str, object]:
    """The pens with their remove links, and the choices of the form that adds one."""
    chosen = {str(ref) for ref in refs}
    pen_items = []
    for slot, pen in enumerate(pens or []):
        others = [ref for ref in refs if ref != refs[slot]]
        pen_items.append({
            "number": slot + 1, "slot": slot, "pen": str(refs[slot]), "asset_code": pen.asset_code,
            "metric": pen.signal.metric,
            # The last pen stays: a trend without pens is no trend (add another first).
            "remove_url": trend_url(others, trend_range=trend_range, compare=compare,
                                    from_time=from_time, to_time=to_time) if others else None,
        })
    return {
        "pen_items": pen_items,
        "choices": service.pen_choices(db),
        "chosen": chosen,
        "can_add": len(refs) < MAX_PENS,
        "max_pens": MAX_PENS,
        "hidden": {
            "pens": [str(ref) for ref in refs] if pens else [],
            "range": trend_range.value if trend_range is not DEFAULT_RANGE else None,
            "compare": compare.value if compare else None,
            "from_time": from_time.strftime("%Y-%m-%dT%H:%M:%SZ") if from_time else None,
            "to_time": to_time.strftime("%Y-%m-%dT%H:%M:%SZ") if to_time else None,
        },
    }


async def _refused(
    request: Request, db: Session, parameter: str, message: str, trend_range: TrendRange,
    compare: Compare | None,
) -> HTMLResponse:
    """422 naming the problem: the page still offers the form, so the operator can go on."""
    # Opening /trends with no pen at all (the navigation link) is a start, not a mistake: the
    # page says so calmly; the status still says no trend was drawn.
    empty = parameter == "pen" and not request.query_params.getlist("pen")
    context: dict[str, object] = {
        "trend": None,
        "problem": {"parameter": parameter, "message": message, "empty": empty},
    }
    if not is_htmx(request):
        # The form keeps the window asked for, unless that was the problem (custom).
        kept = DEFAULT_RANGE if trend_range is TrendRange.custom else trend_range
        context.update(await db_call(db, _manage_context, [], None, kept, compare, None, None))
    return render_page(request, TEMPLATE, context, block="trend_chart",
                       status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


@router.get("/trends", response_class=HTMLResponse)
async def trends_page(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    path: ReadPathDep,
    settings: SettingsDep,
    pen: PenQuery = [],  # noqa: B006 - FastAPI copies query defaults
    trend_range: RangeQuery = DEFAULT_RANGE,
    compare: CompareQuery = None,
    from_time: FromTime = None,
    to_time: ToTime = None,
) -> HTMLResponse:
    """The trend page; for htmx (its own refresh) only the chart block."""
    try:
        refs = parse_pens(pen)
    except PenError as exc:
        return await _refused(request, db, "pen", str(exc), trend_range, compare)
    now = utcnow()
    try:
        window = trend_window(trend_range, now=now, from_time=from_time, to_time=to_time)
    except WindowError as exc:
        return await _refused(request, db, exc.parameter, str(exc), trend_range, compare)
    try:
        # Every pen is found before any is read: a refused trend reads and records nothing.
        pens = await db_call(db, service.pen_signals, [(p.asset_id, p.metric) for p in refs])
    except service.PenNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    trend = await _trend(
        request, path, user, settings.stream_interval_seconds, refs, pens, window,
        trend_range, compare, from_time, to_time,
    )
    context: dict[str, object] = {"trend": trend, "problem": None}
    if not is_htmx(request):
        context.update(await db_call(
            db, _manage_context, refs, pens, trend_range, compare, from_time, to_time
        ))
        with in_locale(request.state.locale):
            context.update(_links(refs, trend_range, compare, from_time, to_time))
    return render_page(request, TEMPLATE, context, block="trend_chart")

