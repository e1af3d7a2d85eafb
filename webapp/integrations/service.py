"""Integrations (historian connections) and signal mappings (asset + metric → external tag)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.assets.models import Asset
from webapp.connectors.registry import validate_integration_config
from webapp.integrations.models import ExternalSignalMapping, TenantIntegration
from webapp.integrations.schemas import (
    IntegrationCreate,
    IntegrationUpdate,
    MappingCreate,
    MappingUpdate,
)

SECRET_MASK = "***"
_SECRET_KEY = re.compile(
    r"password|passwd|pwd|secret|token|api_?key|private_?key|credential", re.IGNORECASE
)


class NotFound(Exception):
    """A referenced row is missing, or belongs to another tenant (indistinguishable)."""


class DuplicateMapping(Exception):
    pass


class InvalidConfig(ValueError):
    pass


# --- secrets -------------------------------------------------------------------------------


def _with_url_password(value: str, password: str | None) -> str:
    """`value` with the password in its userinfo replaced (host text kept verbatim: an IPv6
    host keeps its brackets); unchanged when it has no password or does not parse."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password is None or password is None:
        return value
    userinfo, _, host = parts.netloc.rpartition("@")
    username = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{username}:{password}@{host}"))


def _url_password(value: str) -> str | None:
    try:
        return urlsplit(value).password
    except ValueError:
        return None


def _mask_url(value: str) -> str:
    return _with_url_password(value, SECRET_MASK)


def mask_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    """Secrets never leave the server: secret-looking keys and URL passwords become ***."""
    masked: dict[str, Any] = {}
    for key, value in config.items():
        if _SECRET_KEY.search(key) and value not in (None, ""):
            masked[key] = SECRET_MASK
        else:
            masked[key] = _mask_value(value)
    return masked


def _mask_value(value: Any) -> Any:
    """Secrets nested in objects, lists or URLs (a key alone does not say it all)."""
    if isinstance(value, Mapping):
        return mask_secrets(value)
    if isinstance(value, list):
        return [_mask_value(item) for item in value]
    if isinstance(value, str) and "://" in value:
        return _mask_url(value)
    return value


def _keep_masked_secrets(new: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """A client echoing "***" (or a URL with `:***@`) back keeps the stored secret."""
    merged: dict[str, Any] = {}
    for key, value in new.items():
        old = stored.get(key)
        if value == SECRET_MASK and key in stored:
            merged[key] = old
        else:
            merged[key] = _keep_masked_value(value, old)
    return merged


def _keep_masked_value(value: Any, old: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(old, Mapping):
        return _keep_masked_secrets(value, old)
    if isinstance(value, list) and isinstance(old, list) and len(value) == len(old):
        return [_keep_masked_value(v, o) for v, o in zip(value, old, strict=True)]
    if (
        isinstance(value, str)
        and isinstance(old, str)
        and _url_password(value) == SECRET_MASK
        and _url_password(old) is not None
    ):
        # The host, user or path may have been edited; the password stays the stored one.
        return _with_url_password(value, _url_password(old))
    return value


def _leftover_mask(value: Any, path: str) -> str | None:
    """Where a "***" would be stored as if it were the secret (no stored value to keep)."""
    if value == SECRET_MASK or (isinstance(value, str) and _url_password(value) == SECRET_MASK):
        return path
    items: Any = ()
    if isinstance(value, Mapping):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    for item_path, item in items:
        found = _leftover_mask(item, item_path)
        if found:
            return found
    return None


def _validated(integration_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    masked_at = _leftover_mask(config, "")
    if masked_at:
        raise InvalidConfig(
            f'config key "{masked_at}" holds the mask "***", not a secret: send the real value'
        )
    try:
        return validate_integration_config(integration_type, config)
    except ValueError as exc:
        raise InvalidConfig(str(exc)) from None


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


def create_integration(session: Session, data: IntegrationCreate) -> TenantIntegration:
    integration = TenantIntegration(
        type=data.type,
        name=data.name,
        config=_validated(data.type, data.config),
        is_active=data.is_active,
    )
    session.add(integration)
    session.commit()
    return integration


def update_integration(
    session: Session, integration_id: int, data: IntegrationUpdate
) -> TenantIntegration:
    integration = get_integration(session, integration_id)
    if data.name is not None:
        integration.name = data.name
    if data.config is not None:
        config = _keep_masked_secrets(data.config, integration.config)
        integration.config = _validated(integration.type, config)
    if data.is_active is not None:
        integration.is_active = data.is_active
    session.commit()
    return integration


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


def create_mapping(session: Session, data: MappingCreate) -> ExternalSignalMapping:
    if session.scalar(select(Asset.id).where(Asset.id == data.asset_id)) is None:
        raise NotFound(f"Asset {data.asset_id} not found")
    get_integration(session, data.integration_id)
    mapping = ExternalSignalMapping(**data.model_dump())
    session.add(mapping)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise DuplicateMapping(
            f"Asset {data.asset_id} already maps {data.internal_metric_name!r}"
        ) from None
    return mapping


def update_mapping(session: Session, mapping_id: int, data: MappingUpdate) -> ExternalSignalMapping:
    mapping = get_mapping(session, mapping_id)
    for field_name, value in data.model_dump(exclude_unset=True).items():
        setattr(mapping, field_name, value)
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
