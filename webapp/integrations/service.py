"""Integrations (historian connections) and signal mappings (asset + metric → external tag)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.assets.models import Asset
from webapp.blackbox.audit import (
    AuditedObject,
    Changes,
    ConfigAction,
    changes_between,
    record_config_change,
)
from webapp.connectors.base import Connector, ConnectorError, Destination
from webapp.connectors.egress import EgressPolicy, EgressRefused
from webapp.connectors.registry import (
    check_egress,
    destination_of,
    get_connector,
    validate_integration_config,
)
from webapp.integrations.models import ExternalSignalMapping, TenantIntegration
from webapp.integrations.schemas import (
    IntegrationCreate,
    IntegrationUpdate,
    MappingCreate,
    MappingUpdate,
)
from webapp.integrations.secrets import (
    SecretUnreadable,
    SecretVault,
    keep_masked_secrets,
    leftover_mask,
    mask_secrets,
    sealed_value_at,
)

if TYPE_CHECKING:
    from webapp.config import Settings

logger = logging.getLogger(__name__)


class NotFound(Exception):
    """A referenced row is missing, or belongs to another tenant (indistinguishable)."""


class DuplicateMapping(Exception):
    pass


class InvalidRange(ValueError):
    """An engineering range that cannot be an axis: `field` names the end to fix (→ 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidConfig(ValueError):
    """A config that cannot be saved: malformed, or going where the egress policy refuses.
    The message is safe to show (no secrets)."""


class DestinationRefused(InvalidConfig):
    """The egress policy refuses where the config connects (the message names the setting)."""


@dataclass(frozen=True, slots=True)
class SourceAccess:
    """How this deployment reaches tenants' historians (DESIGN.md §8, §16): the per-request
    timeout, the egress policy and the vault that opens stored secrets."""

    timeout: float
    egress: EgressPolicy
    vault: SecretVault
    # Saving or testing a config resolves its host: in a few threads of their own, bounded in
    # time, so slow DNS (a tenant admin's name server) never holds the threads logins need.
    resolver: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="egress-check"),
        compare=False,
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceAccess:
        return cls(
            timeout=settings.connector_timeout_seconds,
            egress=EgressPolicy.from_settings(settings),
            vault=SecretVault.from_settings(settings),
        )

    def connector(
        self, integration_id: int, integration_type: str, stored_config: Mapping[str, Any]
    ) -> Connector:
        """The integration's connector; a stored config it cannot use is a source failure
        (ConnectorError → 503 or fallback), never a 500."""
        try:
            config = self.vault.reveal(stored_config)
            return get_connector(
                integration_id, integration_type, config, timeout=self.timeout,
                egress=self.egress,
            )
        except ValueError as exc:
            raise ConnectorError(f"the integration's config is not usable: {exc}") from None

    def check_config(self, integration_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """The validated plain config, or InvalidConfig naming the bad key or the refused
        destination. Blocking (it may resolve the destination's host name): for the CLI and
        the seed; requests use `checked_config`."""
        validated = self._validated(integration_type, config)
        self._check_egress(integration_type, validated)
        return validated

    async def checked_config(
        self, integration_type: str, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`check_config` for a request: the name is resolved in the resolver's own threads."""
        validated = self._validated(integration_type, config)
        await self._check_egress_bounded(integration_type, validated)
        return validated

    async def check_destination(
        self, integration_type: str, stored_config: Mapping[str, Any]
    ) -> None:
        """DestinationRefused when a stored config goes where the policy refuses (before a
        connection test sends anything). Other problems are left for the test to report."""
        try:
            validated = validate_integration_config(integration_type, mask_secrets(stored_config))
        except ValueError:
            return
        await self._check_egress_bounded(integration_type, validated)

    def _validated(self, integration_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
        masked_at = leftover_mask(config)
        if masked_at:
            raise InvalidConfig(
                f'config key "{masked_at}" holds the mask "***", not a secret: send the real value'
            )
        sealed_at = sealed_value_at(config)
        if sealed_at:
            raise InvalidConfig(
                f'config key "{sealed_at}" holds a sealed value: send the secret itself'
            )
        try:
            return validate_integration_config(integration_type, config)
        except ValueError as exc:
            raise InvalidConfig(str(exc)) from None

    async def _check_egress_bounded(
        self, integration_type: str, config: Mapping[str, Any]
    ) -> None:
        loop = asyncio.get_running_loop()
        check = loop.run_in_executor(
            self.resolver, self._check_egress, integration_type, config
        )
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                await check
        except TimeoutError:
            # Not refused, only unknown for now: connecting checks again (§16), and a name
            # that never resolves fails there with its own clear message.
            logger.info("egress check of a %s config timed out resolving", integration_type)

    def _check_egress(self, integration_type: str, config: Mapping[str, Any]) -> None:
        try:
            check_egress(integration_type, config, self.egress)
        except EgressRefused as exc:
            raise DestinationRefused(str(exc)) from None


RESOLVE_SECONDS = 3.0


async def patched_config(
    access: SourceAccess,
    integration_type: str,
    stored: Mapping[str, Any],
    new: Mapping[str, Any],
) -> dict[str, Any]:
    """A PATCH's config, checked: an echoed *** keeps the stored secret only while the
    destination (and its channel's security) stays the same — a stored password is never
    sent anywhere new."""
    merged, kept_secret = keep_masked_secrets(new, stored)
    config = await access.checked_config(integration_type, merged)
    _ensure_secret_stays(integration_type, stored, config, kept_secret)
    return config


def _ensure_secret_stays(
    integration_type: str, stored: Mapping[str, Any], config: Mapping[str, Any], kept: bool
) -> None:
    if kept and _destination(integration_type, stored) != _destination(integration_type, config):
        raise InvalidConfig(
            "this change would send the stored password to another destination (scheme, "
            "host, port, user, database or data server) or over a less secure channel: "
            "re-enter the password"
        )


def readable_config(access: SourceAccess, integration: TenantIntegration) -> dict[str, Any]:
    """The stored config opened; if its secrets can no longer be opened (the key changed),
    masked: only newly entered secrets can replace them."""
    try:
        return access.vault.reveal(integration.config)
    except SecretUnreadable:
        return mask_secrets(integration.config)


# --- integrations --------------------------------------------------------------------------


def list_integrations(session: Session) -> Sequence[TenantIntegration]:
    return session.scalars(select(TenantIntegration).order_by(TenantIntegration.id)).all()


def get_integration(session: Session, integration_id: int) -> TenantIntegration:
    integration = session.scalar(
        select(TenantIntegration).where(TenantIntegration.id == integration_id)
    )
    if integration is None:
        raise NotFound(f"Integration {integration_id} not found")
    return integration


def _audit_view(integration: TenantIntegration, config: Mapping[str, Any]) -> dict[str, Any]:
    """An integration as the audit compares it: its fields, and its config key by key."""
    return {
        "type": integration.type,
        "name": integration.name,
        "is_active": integration.is_active,
        **{f"config.{key}": value for key, value in config.items()},
    }


def _audit_changes(
    plain: tuple[dict[str, Any], dict[str, Any]], shown: tuple[dict[str, Any], dict[str, Any]]
) -> Changes:
    """Changes found on plain values, recorded as shown (masked): a changed password reads
    ["***", "***"] — that it changed, never what it was or is."""
    return {name: [shown[0].get(name), shown[1].get(name)] for name in changes_between(*plain)}


def create_integration(
    session: Session,
    data: IntegrationCreate,
    *,
    access: SourceAccess,
    actor_id: int | None,
    checked: dict[str, Any] | None = None,
) -> TenantIntegration:
    """`checked`: the config already through `checked_config` (requests); else it is checked
    here, blocking (the CLI and the seed)."""
    config = checked if checked is not None else access.check_config(data.type, data.config)
    integration = TenantIntegration(
        type=data.type, name=data.name, config=access.vault.seal(config), is_active=data.is_active
    )
    session.add(integration)
    session.flush()
    after = _audit_view(integration, mask_secrets(config))
    record_config_change(
        session, tenant_id=integration.tenant_id, actor_id=actor_id,
        obj=AuditedObject.integration, object_id=integration.id, action=ConfigAction.created,
        changes=changes_between({}, after),
    )
    session.commit()
    return integration


def update_integration(
    session: Session,
    integration_id: int,
    data: IntegrationUpdate,
    *,
    access: SourceAccess,
    actor_id: int | None,
    checked: dict[str, Any] | None = None,
) -> TenantIntegration:
    """PATCH name, is_active and config; `checked` is the new config from `patched_config`
    (requests); without it a new config is checked here, blocking."""
    integration = get_integration(session, integration_id)
    stored = readable_config(access, integration)
    before = (_audit_view(integration, stored), _audit_view(integration, mask_secrets(stored)))
    if data.name is not None:
        integration.name = data.name
    if data.is_active is not None:
        integration.is_active = data.is_active
    config = stored
    if data.config is not None:
        if checked is None:
            merged, kept = keep_masked_secrets(data.config, stored)
            checked = access.check_config(integration.type, merged)
            _ensure_secret_stays(integration.type, stored, checked, kept)
        config = checked
        integration.config = access.vault.seal(config)
    after = (_audit_view(integration, config), _audit_view(integration, mask_secrets(config)))
    changes = _audit_changes((before[0], after[0]), (before[1], after[1]))
    if changes:
        record_config_change(
            session, tenant_id=integration.tenant_id, actor_id=actor_id,
            obj=AuditedObject.integration, object_id=integration.id,
            action=ConfigAction.updated, changes=changes,
        )
    session.commit()
    return integration


def _destination(integration_type: str, config: Mapping[str, Any]) -> Destination | None:
    try:
        return destination_of(integration_type, config)
    except ValueError:
        return None  # a stored config that today's rules reject goes nowhere known


# --- mappings ------------------------------------------------------------------------------


def list_mappings(
    session: Session, *, asset_id: int | None = None
) -> Sequence[ExternalSignalMapping]:
    statement = select(ExternalSignalMapping).order_by(ExternalSignalMapping.id)
    if asset_id is not None:
        statement = statement.where(ExternalSignalMapping.asset_id == asset_id)
    return session.scalars(statement).all()


def get_mapping(session: Session, mapping_id: int) -> ExternalSignalMapping:
    mapping = session.scalar(
        select(ExternalSignalMapping).where(ExternalSignalMapping.id == mapping_id)
    )
    if mapping is None:
        raise NotFound(f"Mapping {mapping_id} not found")
    return mapping


_MAPPING_FIELDS = (
    "asset_id", "integration_id", "internal_metric_name", "external_tag", "scaling_factor",
    "offset_value", "unit", "is_active", "range_low", "range_high",
)


def check_range_order(
    range_low: float | None, range_high: float | None, *, changed: set[str]
) -> None:
    """Both ends set → low < high (§18), else InvalidRange naming the end that was changed
    (range_high when both were, or on create)."""
    if range_low is None or range_high is None or range_low < range_high:
        return
    if changed == {"range_low"}:
        raise InvalidRange(
            "range_low", f"range_low ({range_low:g}) must be less than range_high ({range_high:g})"
        )
    raise InvalidRange(
        "range_high",
        f"range_high ({range_high:g}) must be greater than range_low ({range_low:g})",
    )


def _mapping_view(mapping: ExternalSignalMapping) -> dict[str, Any]:
    return {name: getattr(mapping, name) for name in _MAPPING_FIELDS}


def create_mapping(
    session: Session, data: MappingCreate, *, actor_id: int | None
) -> ExternalSignalMapping:
    if session.scalar(select(Asset.id).where(Asset.id == data.asset_id)) is None:
        raise NotFound(f"Asset {data.asset_id} not found")
    get_integration(session, data.integration_id)
    check_range_order(data.range_low, data.range_high, changed={"range_low", "range_high"})
    mapping = ExternalSignalMapping(**data.model_dump())
    session.add(mapping)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise DuplicateMapping(
            f"Asset {data.asset_id} already maps {data.internal_metric_name!r}"
        ) from None
    record_config_change(
        session, tenant_id=mapping.tenant_id, actor_id=actor_id, obj=AuditedObject.mapping,
        object_id=mapping.id, action=ConfigAction.created, asset_id=mapping.asset_id,
        changes=changes_between({}, _mapping_view(mapping)),
    )
    session.commit()
    return mapping


def update_mapping(
    session: Session, mapping_id: int, data: MappingUpdate, *, actor_id: int | None
) -> ExternalSignalMapping:
    mapping = get_mapping(session, mapping_id)
    before = _mapping_view(mapping)
    patch = data.model_dump(exclude_unset=True)
    # One end is checked against the stored other end, before anything changes.
    check_range_order(
        patch.get("range_low", mapping.range_low), patch.get("range_high", mapping.range_high),
        changed={name for name in patch if name in ("range_low", "range_high")},
    )
    for field_name, value in patch.items():
        setattr(mapping, field_name, value)
    changes = changes_between(before, _mapping_view(mapping))
    if changes:
        record_config_change(
            session, tenant_id=mapping.tenant_id, actor_id=actor_id, obj=AuditedObject.mapping,
            object_id=mapping.id, action=ConfigAction.updated, asset_id=mapping.asset_id,
            changes=changes,
        )
    session.commit()
    return mapping


def active_mappings_for_asset(
    session: Session, asset_id: int | None, *, metric: str | None = None
) -> Sequence[tuple[ExternalSignalMapping, TenantIntegration]]:
    """What an operator can chart: active mappings on active integrations, by mapping id
    (asset_id None: of every asset of the tenant, in one query)."""
    statement = (
        select(ExternalSignalMapping, TenantIntegration)
        .join(TenantIntegration, TenantIntegration.id == ExternalSignalMapping.integration_id)
        .where(
            ExternalSignalMapping.is_active.is_(True),
            TenantIntegration.is_active.is_(True),
        )
        .order_by(ExternalSignalMapping.id)
    )
    if asset_id is not None:
        statement = statement.where(ExternalSignalMapping.asset_id == asset_id)
    if metric is not None:
        statement = statement.where(ExternalSignalMapping.internal_metric_name == metric)
    return [(mapping, integration) for mapping, integration in session.execute(statement)]
