"""Imports every domain's models so `Base.metadata` is complete (Alembic, tests)."""

from webapp.alarms.models import AlarmLimit
from webapp.assets.models import Asset, AssetAIScore
from webapp.blackbox.models import BlackBoxEvent, BlackBoxIncident
from webapp.db import Base
from webapp.integrations.models import ExternalSignalMapping, TenantIntegration
from webapp.logbook.models import LogbookEntry
from webapp.tenancy.models import ApiToken, LoginFailure, Tenant, User, UserSession

__all__ = [
    "AlarmLimit",
    "ApiToken",
    "Asset",
    "AssetAIScore",
    "Base",
    "BlackBoxEvent",
    "BlackBoxIncident",
    "ExternalSignalMapping",
    "LogbookEntry",
    "LoginFailure",
    "Tenant",
    "TenantIntegration",
    "User",
    "UserSession",
]
