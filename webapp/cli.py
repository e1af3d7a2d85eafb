"""`optria-iq` console script: migrate, seed-demo, serve, demo, create-tenant, create-user,
blackbox verify."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from webapp.config import PROJECT_ROOT, Settings, get_settings
from webapp.connectors.base import describe_error
from webapp.db import bind_tenant, create_db_engine, create_session_factory, tenant_session
from webapp.integrations.secrets import SecretKeyMissing
from webapp.tenancy.models import Role, Tenant


def migrate(settings: Settings) -> None:
    from alembic.config import Config

    from alembic import command

    if settings.database_url.startswith("sqlite:///"):
        (PROJECT_ROOT / "var").mkdir(exist_ok=True)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    config.attributes["settings"] = settings  # 0003 seals stored secrets with its key
    command.upgrade(config, "head")


@contextmanager
def _cli_session(settings: Settings) -> Iterator[Session]:
    """One unscoped session for a command; its engine (and pooled connection) closes after."""
    engine = create_db_engine(settings.database_url)
    try:
        with tenant_session(create_session_factory(engine), None) as session:
            yield session
    finally:
        engine.dispose()


def seed_demo(settings: Settings) -> None:
    from webapp.demo.seed import seed_demo_signal_mappings, seed_demo_tenant

    with _cli_session(settings) as session:
        summary = seed_demo_tenant(session, password=settings.demo_password)
        mappings = seed_demo_signal_mappings(session, settings)
    print(
        f"Demo tenant ARAMCO_DEMO: {'created' if summary.tenant_created else 'present'}; "
        f"users created: {len(summary.users_created)}; assets created: "
        f"{len(summary.assets_created)}; signal mappings created: {mappings.created_count} "
        f"({mappings.integration_type} integration {mappings.integration_name!r}); "
        f"alarm limits created: {mappings.limits_created}"
    )


def serve(settings: Settings, workers: int = 1) -> None:
    """Serve with `workers` processes. Each runs its own live hub (its viewers' feeds) and
    checks credentials in the database every tick; one of them, elected by a PostgreSQL
    advisory lock, runs the alarm and health scanner. SQLite has no such lock: one process."""
    import uvicorn

    if not settings.secret_key:
        raise CommandError(
            "OPTRIA_SECRET_KEY is required outside demo mode "
            "(set it, or OPTRIA_DEMO_MODE=true for the local demo)"
        )
    if workers < 1:
        raise CommandError("--workers must be at least 1")
    if workers > 1 and not settings.database_url.startswith("postgresql"):
        raise CommandError(
            "--workers above 1 needs PostgreSQL (its advisory lock elects the one process that "
            "scans alarms); SQLite serves one process"
        )
    uvicorn.run("webapp.main:create_app", factory=True, host=settings.host, port=settings.port,
                workers=workers)


def create_tenant_command(settings: Settings, code: str, name: str, timezone: str) -> int:
    from webapp.tenancy.service import create_tenant, get_tenant_by_code

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        # Pages show times in the plant's timezone: an unknown one would break every page.
        print(
            f"error: unknown timezone {timezone!r} (use an IANA name such as Asia/Riyadh)",
            file=sys.stderr,
        )
        return 1
    with _cli_session(settings) as session:
        if get_tenant_by_code(session, code) is not None:
            print(f"error: tenant {code} already exists", file=sys.stderr)
            return 1
        tenant = create_tenant(session, code=code, name=name, timezone=timezone)
        session.commit()
        print(f"created tenant {tenant.code} (id {tenant.id})")
    return 0


def create_user_command(
    settings: Settings, tenant_code: str, email: str, password: str, role: str
) -> int:
    from webapp.tenancy.service import create_user, find_user_by_email, get_tenant_by_code

    if not EMAIL_PATTERN.fullmatch(email.strip()):
        print(f"error: {email!r} is not an email address", file=sys.stderr)
        return 1
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"error: the password needs at least {MIN_PASSWORD_LENGTH} characters",
              file=sys.stderr)
        return 1
    with _cli_session(settings) as session:
        tenant = get_tenant_by_code(session, tenant_code)
        if tenant is None:
            print(f"error: no tenant with code {tenant_code}", file=sys.stderr)
            return 1
        if find_user_by_email(session, email) is not None:
            print(f"error: a user with email {email} already exists", file=sys.stderr)
            return 1
        user = create_user(session, tenant=tenant, email=email, password=password, role=Role(role))
        session.commit()
        print(f"created {user.role} {user.email} in {tenant.code}")
    return 0


def verify_blackbox_command(settings: Settings, tenant_code: str | None) -> int:
    """Check each tenant's BlackBox hash chain (DESIGN.md §16); 1 when any is broken."""
    from webapp.blackbox.service import verify_chain
    from webapp.tenancy.service import get_tenant_by_code

    with _cli_session(settings) as session:
        if tenant_code is None:
            tenants = list(session.scalars(select(Tenant).order_by(Tenant.id)))
        else:
            tenant = get_tenant_by_code(session, tenant_code)
            if tenant is None:
                print(f"error: no tenant with code {tenant_code}", file=sys.stderr)
                return 1
            tenants = [tenant]
        checked = 0
        broken = 0
        for tenant in tenants:
            # Bound like a request of that tenant: the scoping hook and RLS apply.
            bind_tenant(session, tenant.id)
            result = verify_chain(session)
            checked += result.events_checked
            state = "intact" if result.ok else "BROKEN"
            # The head hash is what to keep outside the database: it also proves the tail.
            head = f", head {result.head_hash}" if result.head_hash else ""
            print(f"tenant {tenant.code}: {state}, events checked: {result.events_checked}{head}")
            if not result.ok:
                broken += 1
                print(f"first bad event: {result.first_bad_id}")
    print(f"tenants checked: {len(tenants)}, events checked: {checked}, broken chains: {broken}")
    return 1 if broken else 0


class CommandError(Exception):
    """A problem the operator can fix: printed as one line, exit status 1."""


EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_PASSWORD_LENGTH = 8


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except (CommandError, SecretKeyMissing) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        # Typically an unmigrated database or an unreachable server.
        print(database_problem(exc), file=sys.stderr)
        return 1


def database_problem(exc: DBAPIError) -> str:
    return (
        f"error: database problem ({describe_error(exc.orig or exc)}); "
        "is OPTRIA_DATABASE_URL right, and has `optria-iq migrate` run?"
    )


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optria-iq", description="OPTRIA IQ Digital Twin")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    commands.add_parser("seed-demo", help="create or complete the ARAMCO_DEMO tenant")
    serve_parser = commands.add_parser("serve", help="serve the web app")
    serve_parser.add_argument("--workers", type=int, default=1,
                              help="processes to serve with (PostgreSQL only above 1)")
    commands.add_parser("demo", help="migrate, seed the demo tenant and serve")
    tenant_parser = commands.add_parser("create-tenant", help="create a tenant")
    tenant_parser.add_argument("code")
    tenant_parser.add_argument("name")
    tenant_parser.add_argument("--timezone", default="UTC")
    user_parser = commands.add_parser("create-user", help="create a user in a tenant")
    user_parser.add_argument("--tenant", required=True)
    user_parser.add_argument("--email", required=True)
    user_parser.add_argument("--password", required=True)
    user_parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    blackbox_parser = commands.add_parser("blackbox", help="BlackBox maintenance")
    blackbox_commands = blackbox_parser.add_subparsers(dest="blackbox_command", required=True)
    verify_parser = blackbox_commands.add_parser(
        "verify", help="check the BlackBox hash chains (exit status 1 when one is broken)"
    )
    verify_parser.add_argument("--tenant", metavar="CODE", help="only this tenant (default: all)")
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.command == "migrate":
        migrate(settings)
    elif args.command == "seed-demo":
        seed_demo(settings)
    elif args.command == "serve":
        serve(settings, args.workers)
    elif args.command == "demo":
        migrate(settings)
        seed_demo(settings)
        print(
            f"\nOPTRIA IQ demo on http://{settings.host}:{settings.port}/\n"
            f"  log in as demo@aramco.com / {settings.demo_password} (tenant admin)\n"
            f"  also engineer@, operator@ and viewer@aramco.com, same password\n"
        )
        serve(settings)
    elif args.command == "create-tenant":
        return create_tenant_command(settings, args.code, args.name, args.timezone)
    elif args.command == "create-user":
        return create_user_command(settings, args.tenant, args.email, args.password, args.role)
    elif args.command == "blackbox":
        return verify_blackbox_command(settings, args.tenant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
