"""Versioned, forward-only migrations from sql/migrations: one transaction each, recorded in
ops.schema_migrations, serialised across concurrent runs by an advisory lock.

Files are `NNNN_<what>.sql`; `NNNN_ref_<what>.sql` belong to the reference copy of the
business tables and are applied only when asked (demo, tests, --with-reference-schema)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import MigrationError
from sql import MIGRATIONS_DIR

if TYPE_CHECKING:
    import asyncpg

# Any fixed 64-bit number; every `opsconsole migrate` takes this lock before looking.
MIGRATION_LOCK_KEY = 0x6F7073636F6E73  # "opscons"

BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def reference(self) -> bool:
        return self.name.startswith("ref_")

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationReport:
    applied: tuple[str, ...]
    already_applied: int
    skipped_reference: tuple[str, ...]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in version order; raises MigrationError on a bad name or a
    duplicate version."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        if not number.isdigit() or not name:
            raise MigrationError(f"{path.name}: migration files are named NNNN_<what>.sql")
        version = int(number)
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is also {found[version].path.name}")
        found[version] = Migration(version, name, path)
    return [found[v] for v in sorted(found)]


async def migrate(
    conn: asyncpg.Connection,
    *,
    with_reference: bool = False,
    progress: Callable[[str], None] | None = None,
    directory: Path = MIGRATIONS_DIR,
) -> MigrationReport:
    """Apply every pending migration; safe to run twice and concurrently.

    Raises MigrationError naming the migration that failed (its transaction is rolled
    back, earlier ones stay) or one that was edited after it was applied.
    """
    import asyncpg

    say = progress or (lambda _line: None)
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(BOOTSTRAP)
        rows = await conn.fetch("SELECT version, checksum FROM ops.schema_migrations")
        done = {row["version"]: row["checksum"] for row in rows}
        applied, skipped = [], []
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum():
                    raise MigrationError(
                        f"{migration.label} was edited after it was applied; "
                        "migrations are forward-only: add a new one instead"
                    )
                continue
            if migration.reference and not with_reference:
                skipped.append(migration.label)
                continue
            say(f"applying {migration.label}")
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql())
                    await conn.execute(
                        "INSERT INTO ops.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum(),
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{migration.label} failed and was rolled back: {exc}") from exc
            applied.append(migration.label)
        return MigrationReport(tuple(applied), len(done), tuple(skipped))
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
