"""Integrations (read: engineer+; write: tenant_admin) and signal mappings API."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from sqlalchemy.orm import Session

from webapp.deps import (
    AdminUser,
    CurrentUser,
    EngineerUser,
    OptionalAssetIdQuery,
    SessionDep,
    SourcesDep,
    configuration_changed,
    db_call,
)
from webapp.integrations import service
from webapp.integrations.models import TenantIntegration
from webapp.integrations.schemas import (
    ConnectionTestResult,
    IntegrationCreate,
    IntegrationList,
    IntegrationOut,
    IntegrationUpdate,
    MappingCreate,
    MappingList,
    MappingOut,
    MappingUpdate,
)
from webapp.integrations.secrets import mask_secrets
from webapp.timeseries.service import check_connection
from webapp.types import MAX_DB_ID

router = APIRouter(prefix="/api", tags=["integrations"])

IntegrationId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
MappingId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]


def _out(integration: TenantIntegration) -> IntegrationOut:
    return IntegrationOut(
        id=integration.id,
        type=integration.type,
        name=integration.name,
        is_active=integration.is_active,
        config=mask_secrets(integration.config),
    )


def _not_found(exc: service.NotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _invalid_range(exc: service.InvalidRange) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"type": "value_error", "loc": ["body", exc.field], "msg": str(exc)}],
    )


def _invalid_config(exc: service.InvalidConfig) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        [{"type": "value_error", "loc": ["body", "config"], "msg": str(exc)}],
    )


@router.get("/integrations", response_model=IntegrationList)
def list_integrations(db: SessionDep, _user: EngineerUser) -> IntegrationList:
    return IntegrationList(integrations=[_out(i) for i in service.list_integrations(db)])


@router.post("/integrations", response_model=IntegrationOut, status_code=201)
async def create_integration(
    data: IntegrationCreate, db: SessionDep, user: AdminUser, sources: SourcesDep
) -> IntegrationOut:
    """Config validated per type and its destination checked against the egress policy
    (async: a slow name server holds no worker thread), then saved with secrets sealed."""
    try:
        checked = await sources.checked_config(data.type, data.config)
    except service.InvalidConfig as exc:
        raise _invalid_config(exc) from None
    integration = await db_call(db, _create, data, sources, user.id, checked)
    return _out(integration)


def _create(
    db: Session, data: IntegrationCreate, sources: service.SourceAccess, actor_id: int,
    checked: dict[str, Any],
) -> TenantIntegration:
    return service.create_integration(
        db, data, access=sources, actor_id=actor_id, checked=checked
    )


@router.patch("/integrations/{integration_id}", response_model=IntegrationOut)
async def update_integration(
    request: Request, integration_id: IntegrationId, data: IntegrationUpdate, db: SessionDep,
    user: AdminUser, sources: SourcesDep,
) -> IntegrationOut:
    try:
        checked = None
        if data.config is not None:
            integration = await db_call(db, service.get_integration, integration_id)
            stored = service.readable_config(sources, integration)
            checked = await service.patched_config(sources, integration.type, stored, data.config)
        updated = await db_call(db, _update, integration_id, data, sources, user.id, checked)
    except service.NotFound as exc:
        raise _not_found(exc) from None
    except service.InvalidConfig as exc:
        raise _invalid_config(exc) from None
    # Committed: open streams reconnect and read with the new settings.
    configuration_changed(request, tenant_id=user.tenant_id, integration_id=integration_id)
    return _out(updated)


def _update(
    db: Session, integration_id: int, data: IntegrationUpdate, sources: service.SourceAccess,
    actor_id: int, checked: dict[str, Any] | None,
) -> TenantIntegration:
    return service.update_integration(
        db, integration_id, data, access=sources, actor_id=actor_id, checked=checked
    )


@router.post("/integrations/{integration_id}/test", response_model=ConnectionTestResult)
async def test_integration(
    integration_id: IntegrationId, db: SessionDep, _user: EngineerUser, sources: SourcesDep
) -> ConnectionTestResult:
    """Tries the connection and changes nothing; 200 whether or not the source answers, 422
    when the egress policy refuses its destination (nothing is sent there)."""
    try:
        integration = await db_call(db, service.get_integration, integration_id)
    except service.NotFound as exc:
        raise _not_found(exc) from None
    started = time.perf_counter()
    try:
        await sources.check_destination(integration.type, integration.config)
    except service.DestinationRefused as exc:
        raise _invalid_config(exc) from None
    problem = await check_connection(integration.id, integration.type, integration.config, sources)
    ok = problem is None
    detail = f"Connected to the {integration.type} source" if ok else str(problem)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ConnectionTestResult(ok=ok, detail=detail, latency_ms=latency_ms)


@router.get("/mappings", response_model=MappingList, tags=["mappings"])
def list_mappings(
    db: SessionDep, _user: CurrentUser, asset_id: OptionalAssetIdQuery = None
) -> MappingList:
    mappings = service.list_mappings(db, asset_id=asset_id)
    return MappingList.model_validate({"mappings": mappings}, from_attributes=True)


@router.post("/mappings", response_model=MappingOut, status_code=201, tags=["mappings"])
def create_mapping(data: MappingCreate, db: SessionDep, user: EngineerUser) -> MappingOut:
    try:
        return MappingOut.model_validate(service.create_mapping(db, data, actor_id=user.id))
    except service.NotFound as exc:
        raise _not_found(exc) from None
    except service.DuplicateMapping as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except service.InvalidRange as exc:
        raise _invalid_range(exc) from None


@router.patch("/mappings/{mapping_id}", response_model=MappingOut, tags=["mappings"])
def update_mapping(
    request: Request, mapping_id: MappingId, data: MappingUpdate, db: SessionDep,
    user: EngineerUser,
) -> MappingOut:
    try:
        mapping = MappingOut.model_validate(
            service.update_mapping(db, mapping_id, data, actor_id=user.id)
        )
    except service.NotFound as exc:
        raise _not_found(exc) from None
    except service.InvalidRange as exc:
        raise _invalid_range(exc) from None
    # Committed: open streams reconnect with the new tag, scaling or unit (or get a 404).
    configuration_changed(request, tenant_id=user.tenant_id, mapping_id=mapping_id)
    return mapping
