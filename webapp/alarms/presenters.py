"""What the alarm screens show (DESIGN.md §14 "Screens"): rows, the banner, the KPI figures.

Numbers and times are formatted here, in the viewer's language and the plant's timezone;
words (priority, state, level, metric) are translated where they are rendered, by the
macros of partials/_labels.html. Reads go through the alarm service; nothing here knows the
request or writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from webapp.alarms import service
from webapp.alarms.evaluation import Level
from webapp.alarms.models import PRIORITIES
from webapp.templating import format_local_time, iso_utc
from webapp.tenancy.models import ROLE_RANK, Role, User
from webapp.twin.charts import format_value
from webapp.twin.decimals import metric_decimals

# One short 24-hour format for alarm times, in the plant's timezone (§18).
ALARM_TIME_FORMAT = "d MMM HH:mm:ss"
ACKNOWLEDGEABLE = frozenset({service.AlarmStateName.unack_active, service.AlarmStateName.rtn_unack})
RECENTLY_CLOSED = 20


def may_acknowledge(user: User) -> bool:
    """Acknowledging (and shelving) is for operators and above (§14)."""
    return ROLE_RANK[Role(user.role)] >= ROLE_RANK[Role.operator]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, as the rows need it: plain values, safe to use in a worker thread."""

    may_acknowledge: bool
    timezone: str
    locale: str


def viewer_of(user: User, locale: str) -> Viewer:
    return Viewer(may_acknowledge(user), user.tenant.timezone, locale)


@dataclass(frozen=True, slots=True)
class Moment:
    text: str
    iso: str


def _moment(value: datetime | None, viewer: Viewer) -> Moment | None:
    if value is None:
        return None
    return Moment(format_local_time(value, viewer.timezone, ALARM_TIME_FORMAT, viewer.locale),
                  iso_utc(value))


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """One alarm as a row of the /alarms lists and of the asset panel."""

    id: int
    state: str
    priority: str
    suppressed: str | None
    asset_id: int
    asset_code: str
    metric: str
    level: str
    is_high: bool  # hi/hihi: "value ≥ threshold"; lo/lolo: "value ≤ threshold"
    unit: str
    trigger_text: str
    threshold_text: str
    activated: Moment
    acknowledged: Moment | None
    cleared: Moment | None
    closed: Moment | None
    shelved_until: Moment | None
    shelve_reason: str | None
    can_acknowledge: bool


def alarm_row(alarm: service.AlarmView, viewer: Viewer) -> AlarmRow:
    occurrence, limit, mapping = alarm.occurrence, alarm.view.limit, alarm.view.mapping
    facts = alarm.as_dict()
    # The metric's decimals (as on its chart), so trigger and threshold compare at a glance.
    digits = metric_decimals(mapping.unit, mapping.range_low, mapping.range_high)
    shelved = alarm.suppressed == "shelved"
    return AlarmRow(
        id=occurrence.id,
        state=alarm.state.value,
        priority=facts["priority"],
        suppressed=alarm.suppressed,
        asset_id=alarm.view.asset.id,
        asset_code=alarm.view.asset.code,
        metric=mapping.internal_metric_name,
        level=limit.level,
        is_high=Level(limit.level).is_high,
        unit=mapping.unit or "",
        trigger_text=format_value(occurrence.trigger_value, digits, viewer.locale),
        threshold_text=format_value(limit.threshold, digits, viewer.locale),
        activated=_moment(occurrence.opened_at, viewer) or Moment("—", ""),
        acknowledged=_moment(occurrence.acknowledged_at, viewer),
        cleared=_moment(occurrence.cleared_at, viewer),
        closed=_moment(occurrence.closed_at, viewer),
        shelved_until=_moment(limit.shelved_until, viewer) if shelved else None,
        shelve_reason=limit.shelve_reason if shelved else None,
        can_acknowledge=viewer.may_acknowledge and alarm.state in ACKNOWLEDGEABLE,
    )


def alarm_rows(alarms: Iterable[service.AlarmView], viewer: Viewer) -> list[AlarmRow]:
    return [alarm_row(alarm, viewer) for alarm in alarms]


# --- the banner on every page ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Banner:
    """Active, unsuppressed alarms per priority, and each asset's highest one (the cards)."""

    counts: dict[str, int]
    assets: dict[int, str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def highest(self) -> str | None:
        return next((priority for priority in PRIORITIES if self.counts.get(priority)), None)


def read_banner(session: Session, now: datetime | None = None) -> Banner:
    return Banner(
        counts=service.banner_counts(session, now),
        assets=service.active_priority_by_asset(session, now),
    )


# --- the performance figures -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadActor:
    asset_code: str
    metric: str
    level: str
    activations: int


def bad_actors(session: Session, kpis: dict[str, Any]) -> list[BadActor]:
    """The KPI's top bad actors with their asset codes (the API gives ids)."""
    if not kpis["top_bad_actors"]:
        return []
    limits = {view.limit.id: view for view in service.list_limits(session)}
    return [
        BadActor(limits[actor["limit_id"]].asset.code, actor["metric"], actor["level"],
                 actor["activations"])
        for actor in kpis["top_bad_actors"]
        if actor["limit_id"] in limits
    ]
