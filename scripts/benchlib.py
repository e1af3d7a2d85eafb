"""What the benchmark scripts share (run by hand; see each script's docstring)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text


@contextmanager
def scratch_database(server_url: str | None) -> Iterator[str]:
    """A new, empty database: a temporary SQLite file, or one on the PostgreSQL server
    (dropped afterwards, whatever happened)."""
    if server_url is None:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    name = f"optria_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_tenant(factory: Any, access: Any, index: int) -> tuple[int, int]:
    """Tenant BENCH{index} with one demo integration, through the services:
    (tenant id, integration id)."""
    from webapp.db import tenant_session
    from webapp.integrations.schemas import IntegrationCreate
    from webapp.integrations.service import create_integration
    from webapp.tenancy.service import create_tenant

    with tenant_session(factory, None) as session:
        tenant = create_tenant(session, code=f"BENCH{index}", name=f"Bench plant {index}",
                               timezone="UTC")
        tenant_id = tenant.id
        session.commit()
    with tenant_session(factory, tenant_id) as session:
        integration = create_integration(
            session, IntegrationCreate(type="demo", name="Bench demo", config={"mode": "demo"}),
            access=access, actor_id=None,
        )
        session.commit()
        return tenant_id, integration.id
