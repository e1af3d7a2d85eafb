#!/usr/bin/env python3
"""Map the ARAMCO_DEMO assets' signals (idempotent). Exit 1 when the demo tenant is missing.

Usage: python scripts/seed_demo_mappings.py   (database from OPTRIA_DATABASE_URL)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.exc import DBAPIError

from webapp.cli import database_problem
from webapp.config import get_settings
from webapp.db import create_db_engine, create_session_factory, tenant_session
from webapp.demo.seed import DemoTenantMissing, seed_demo_signal_mappings


def main() -> int:
    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    try:
        with tenant_session(create_session_factory(engine), None) as session:
            summary = seed_demo_signal_mappings(session, settings)
    except DemoTenantMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        print(database_problem(exc), file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    state = "created" if summary.integration_created else "already present"
    print(f"Integration: {summary.integration_name} ({summary.integration_type}), {state}")
    for asset_code in summary.created:
        created = ", ".join(summary.created[asset_code]) or "-"
        present = ", ".join(summary.present[asset_code]) or "-"
        print(f"  {asset_code:<8} created: {created}; already present: {present}")
    print(
        f"Mappings: {summary.created_count} created, {summary.present_count} already present"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
