"""Migrations (DESIGN.md §3): additive only, downgrade refused, `upgrade head` == the models.

Each backend gets its own empty database here (not the shared test database), migrated once
through the app's own `optria-iq migrate` path.
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, event, inspect, text

from alembic import command
from tests.conftest import migrated_database
from webapp.config import PROJECT_ROOT
from webapp.db import create_db_engine
from webapp.models import Base

VERSIONS_DIR = PROJECT_ROOT / "alembic" / "versions"


def alembic_config(**attributes: object) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    config.attributes.update(attributes)
    return config


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def migrated_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database of each backend after one `optria-iq migrate`."""
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


def schema_diff(url: str, metadata: MetaData) -> list:
    engine = create_db_engine(url, as_app_role=False)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


# --- upgrade head == models ----------------------------------------------------------------


def test_upgrade_head_on_an_empty_database_matches_the_models(migrated_url: str) -> None:
    assert schema_diff(migrated_url, Base.metadata) == []


def test_the_schema_comparison_would_see_a_drift(migrated_url: str) -> None:
    """Guards the test above against comparing nothing: a changed model must show up."""
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    asset = drifted.tables["asset"]
    asset.append_column(Column("serial_number", String(64), nullable=True))
    asset.c.code.type = String(80)
    kinds = {
        diff[0][0] if isinstance(diff, list) else diff[0]
        for diff in schema_diff(migrated_url, drifted)
    }
    assert {"add_column", "modify_type"} <= kinds


def test_upgrade_head_reaches_the_single_head(migrated_url: str) -> None:
    heads = script_directory().get_heads()
    assert len(heads) == 1, f"branched migration history: {heads}"
    engine = create_db_engine(migrated_url, as_app_role=False)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert [version for (version,) in versions] == heads


def test_migrating_twice_changes_nothing(migrated_url: str) -> None:
    engine = create_db_engine(migrated_url, as_app_role=False)
    statements: list[str] = []
    try:
        with engine.connect() as connection:
            event.listen(
                connection,
                "before_cursor_execute",
                lambda _conn, _cursor, statement, *_rest: statements.append(statement),
            )
            tables_before = set(inspect(connection).get_table_names())
            command.upgrade(alembic_config(connection=connection), "head")
            connection.commit()
            tables_after = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert any("alembic_version" in statement for statement in statements)
    writes = [
        statement
        for statement in statements
        if re.match(
            r"\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|GRANT|REVOKE|TRUNCATE|DO)\b",
            statement,
            re.IGNORECASE,
        )
    ]
    assert writes == []
    assert tables_after == tables_before
    assert schema_diff(migrated_url, Base.metadata) == []


def test_downgrade_is_refused_and_changes_nothing(migrated_url: str) -> None:
    engine = create_db_engine(migrated_url, as_app_role=False)
    try:
        with engine.connect() as connection:
            tables_before = set(inspect(connection).get_table_names())
            with pytest.raises(RuntimeError, match="roll forward"):
                command.downgrade(alembic_config(connection=connection), "base")
            connection.rollback()
            assert set(inspect(connection).get_table_names()) == tables_before
    finally:
        engine.dispose()
    assert schema_diff(migrated_url, Base.metadata) == []


# --- the additive-only guard ---------------------------------------------------------------

FORBIDDEN_SQL = re.compile(
    r"\bDROP\s+(TABLE|COLUMN|INDEX|CONSTRAINT|VIEW|SCHEMA|SEQUENCE|TYPE|POLICY|ROLE|FUNCTION"
    r"|TRIGGER|OWNED)\b"
    r"|\bRENAME\s+(TO|COLUMN|CONSTRAINT)\b"
    r"|\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b"
    r"|\bSET\s+NOT\s+NULL\b"
    r"|\bTRUNCATE\b",
    re.IGNORECASE,
)


def _call_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return call.func.id if isinstance(call.func, ast.Name) else ""


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def destructive_operations(source: str) -> list[str]:
    """Every drop, rename, type change or narrowing in a migration's source, one per line."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    findings: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            if name.startswith("drop_") or name == "rename_table":
                findings.append(f"line {node.lineno}: {name}()")
            elif name == "alter_column":
                for forbidden in ("type_", "new_column_name"):
                    if forbidden in keywords:
                        findings.append(f"line {node.lineno}: alter_column({forbidden}=...)")
                if "nullable" in keywords and _is_false(keywords["nullable"]):
                    findings.append(f"line {node.lineno}: alter_column(nullable=False)")
            elif name == "add_column":
                for column in ast.walk(node):
                    if isinstance(column, ast.Call) and any(
                        kw.arg == "nullable" and _is_false(kw.value) for kw in column.keywords
                    ):
                        findings.append(f"line {node.lineno}: add_column() of a NOT NULL column")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and (match := FORBIDDEN_SQL.search(node.value))
        ):
            findings.append(f"line {node.lineno}: SQL {match.group(0)!r}")
    return findings


def version_files() -> list[Path]:
    files = sorted(VERSIONS_DIR.glob("*.py"))
    assert files, f"no migrations found in {VERSIONS_DIR}"
    return files


@pytest.mark.parametrize("path", version_files(), ids=lambda path: path.name)
def test_migration_is_additive_only(path: Path) -> None:
    assert destructive_operations(path.read_text()) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "op.drop_table('asset')",
        "op.drop_column('asset', 'location')",
        "op.drop_index(op.f('ix_asset_tenant_id'), table_name='asset')",
        "with op.batch_alter_table('asset') as batch_op:\n    batch_op.drop_constraint('uq')",
        "op.rename_table('asset', 'equipment')",
        "op.alter_column('asset', 'code', type_=sa.String(32))",
        "op.alter_column('asset', 'code', new_column_name='tag')",
        "op.alter_column('asset', 'location', nullable=False)",
        "with op.batch_alter_table('asset') as b:\n    b.alter_column('code', type_=sa.Text())",
        "op.add_column('asset', sa.Column('serial', sa.String(64), nullable=False))",
        "op.execute('DROP TABLE asset')",
        "op.execute(f'ALTER TABLE \"{t}\" RENAME TO old_{t}')",
        "op.execute('ALTER TABLE asset ALTER COLUMN code TYPE varchar(8)')",
        "op.execute('alter table asset alter column location set not null')",
        "def downgrade():\n    op.drop_table('asset')",
    ],
)
def test_guard_catches_destructive_operations(snippet: str) -> None:
    assert destructive_operations(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        "op.create_table('gauge', sa.Column('id', sa.Integer(), nullable=False))",
        "op.add_column('asset', sa.Column('serial', sa.String(64), nullable=True))",
        "op.create_index('ix_asset_code', 'asset', ['code'])",
        "op.alter_column('asset', 'location', nullable=True)",
        "op.execute('CREATE POLICY tenant_isolation ON gauge USING (true)')",
        '"""Never drop or rename: DROP TABLE is forbidden here."""',
        "def downgrade():\n    raise RuntimeError('roll forward')",
    ],
)
def test_guard_lets_additive_operations_through(snippet: str) -> None:
    assert destructive_operations(snippet) == []


def test_every_downgrade_raises_without_emitting_sql() -> None:
    revisions = list(script_directory().walk_revisions())
    assert len(revisions) == len(version_files())
    for revision in revisions:
        for dialect in ("postgresql", "sqlite"):
            emitted = io.StringIO()
            context = MigrationContext.configure(
                dialect_name=dialect, opts={"as_sql": True, "output_buffer": emitted}
            )
            with Operations.context(context), pytest.raises(Exception):  # noqa: B017
                revision.module.downgrade()
            assert emitted.getvalue() == "", f"{revision.revision} downgrade on {dialect}"
