"""Configuration audit (DESIGN.md §16): every create or change of an integration, mapping,
alarm limit, asset or user, and every token revocation, leaves a CONFIG event in the BlackBox.

The event says who acted (`user_id`, None for the CLI or the seed), what (`object`,
`object_id`) and, field by field, what changed (`changes: {field: [before, after]}`). Callers
pass values already fit for the record: secrets masked.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from webapp.blackbox.service import record_event

CONFIG_CATEGORY = "CONFIG"
ADMIN_SOURCE = "OPTRIA_ADMIN"


class AuditedObject(enum.StrEnum):
    integration = "integration"
    mapping = "mapping"
    alarm_limit = "alarm_limit"
    asset = "asset"
    user = "user"
    token = "token"


class ConfigAction(enum.StrEnum):
    created = "CREATED"
    updated = "UPDATED"
    revoked = "REVOKED"


Changes = dict[str, list[Any]]


def changes_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> Changes:
    """{field: [before, after]} for every field whose value differs (a missing field is None)."""
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted({*before, *after})
        if before.get(name) != after.get(name)
    }


def record_config_change(
    session: Session,
    *,
    tenant_id: int,
    actor_id: int | None,
    obj: AuditedObject,
    object_id: int,
    action: ConfigAction,
    changes: Changes,
    asset_id: int | None = None,
) -> None:
    """Add the CONFIG event to the session: it lands with the change it records, or not at all."""
    label = obj.value.replace("_", " ").capitalize()
    fields = ", ".join(changes) if changes else "no fields"
    record_event(
        session,
        tenant_id=tenant_id,
        asset_id=asset_id,
        source_system=ADMIN_SOURCE,
        source_type=f"{obj.value.upper()}_{action.value}",
        event_category=CONFIG_CATEGORY,
        severity="INFO",
        summary=f"{label} {object_id} {action.value.lower()}: {fields}",
        payload={
            "user_id": actor_id,
            "object": obj.value,
            "object_id": object_id,
            "changes": changes,
        },
    )
