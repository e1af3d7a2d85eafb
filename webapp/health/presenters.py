"""What the health screens and the API say: each component as a sentence in the reader's
language (the stored rows keep only the numbers)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webapp.assets.models import Asset
from webapp.health.charts import HealthTrend, build_health_trend
from webapp.health.model import Component, component_detail, foundation_of, machine_group_of
from webapp.health.service import AssetHealthView
from webapp.templating import format_local_time, gettext, iso_utc
from webapp.twin.presenters import metric_label

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ComponentRow:
    name: str
    penalty: float
    detail: str
    params: dict[str, Any]


def component_rows(components: list[Component]) -> list[ComponentRow]:
    """In the current locale (a rendered page, or `templating.in_locale`)."""
    return [
        ComponentRow(c.name, c.penalty, _detail(c), c.params) for c in components
    ]


def _detail(component: Component) -> str:
    try:
        return component_detail(component, gettext, metric_label=metric_label)
    except (KeyError, TypeError, ValueError):
        # A row stored by another model version: its name still says what it was.
        logger.warning("health component %r has no sentence", component.name, exc_info=True)
        return component.name.replace("_", " ")


@dataclass(frozen=True, slots=True)
class VibrationClass:
    """The ISO 20816-3 class the zones are judged by; `*_default`: not set on the asset."""

    machine_group: int
    group_is_default: bool
    foundation: str
    foundation_is_default: bool


def vibration_class(asset: Asset) -> VibrationClass:
    return VibrationClass(
        machine_group_of(asset.asset_type, asset.machine_group), asset.machine_group is None,
        foundation_of(asset.foundation), asset.foundation is None,
    )


@dataclass(frozen=True, slots=True)
class HealthPanel:
    view: AssetHealthView
    components: list[ComponentRow]
    assessed_text: str  # when the newest assessment was made, on the plant's clock
    assessed_iso: str
    trend: HealthTrend
    trend_hours: int


def health_panel(
    view: AssetHealthView, points: list[tuple[datetime, int | None]], *, now: datetime,
    hours: int, timezone: str, locale: str,
) -> HealthPanel:
    """The panel's health section, in the current locale."""
    assessed = view.computed_at
    return HealthPanel(
        view=view,
        components=component_rows(view.components),
        assessed_text=format_local_time(assessed, timezone, "d MMM HH:mm", locale)
        if assessed else "",
        assessed_iso=iso_utc(assessed) if assessed else "",
        trend=build_health_trend(
            points, start=now - timedelta(hours=hours), end=now, timezone=timezone,
            locale=locale,
        ),
        trend_hours=hours,
    )
