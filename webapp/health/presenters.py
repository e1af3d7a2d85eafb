"""What the health screens and the API say: each component as a sentence in the reader's
language (the stored rows keep only the numbers)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from webapp.health.model import Component, component_detail
from webapp.templating import gettext
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
