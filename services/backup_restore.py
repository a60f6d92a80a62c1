"""Reading a backup back: verify (every chunk's tag and the plaintext's sha256, nothing
written to disk), restore (the stream checked to its last chunk into a private temporary
file before pg_restore -j sees a byte of it; a legacy .sql.gz through psql), and the
evidence of a restore drill (row counts against the manifest, amcheck, the smoke query)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from services.backup_format import BackupError, BackupKey, BackupReader
from services.errors import BackendFailed, ServiceError
from services.pgtools import pg_tool, tool_env, tool_error
from services.postgres import explain_failure, named_queries
from services.storage import StorageService

Say = Callable[[str], None]
SMOKE_QUERY = "SELECT COUNT(*) FROM users"  # the AGIS manual's check after a restore


@dataclass(frozen=True)
class Checked:
    """A stream read to its end: what it held, and whether it matched what was expected."""

    ok: bool
    chunks: int
    plaintext_bytes: int
    stored_bytes: int
    plaintext_sha256: str
    seconds: float
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "chunks": self.chunks, "plaintext_bytes": self.plaintext_bytes,
                "stored_bytes": self.stored_bytes, "plaintext_sha256": self.plaintext_sha256,
                "seconds": round(self.seconds, 3), "problem": self.problem}  # fmt: skip


async def read_backup(
    storage: StorageService,
    key: str,
    backup_key: BackupKey,
    expected: dict[str, Any] | None,
    *,
    sink=None,
    say: Say | None = None,
) -> Checked:
    """Stream object `key` through the reader, writing plaintext to `sink` (a binary file)
    when given; compares the sha256 and size with `expected` (the manifest). A damaged,
    truncated, reordered or foreign-key stream comes back with ok False and the problem;
    S3 failing raises ServiceError."""
    started = time.perf_counter()
    reader = BackupReader(backup_key)
    stored = 0
    last_said = 0.0
    try:
        async with contextlib.aclosing(storage.get_stream(key)) as stream:
            async for piece in stream:
                stored += len(piece)
                for plain in reader.feed(piece):
                    if sink is not None:
                        await asyncio.to_thread(sink.write, plain)
                if say and time.perf_counter() - last_said > 1:
                    last_said = time.perf_counter()
                    say(f"read {stored / 1048576:.1f} MiB")
        summary = reader.finish()
    except BackupError as exc:
        return Checked(False, 0, 0, stored, "", time.perf_counter() - started, str(exc))
    seconds = time.perf_counter() - started
    problem = None
    if expected:
        if summary.plaintext_sha256 != expected.get("plaintext_sha256"):
            problem = "the plaintext's sha256 differs from the manifest's"
        elif summary.plaintext_bytes != expected.get("plaintext_bytes"):
            problem = "the plaintext's size differs from the manifest's"
    return Checked(problem is None, summary.chunks, summary.plaintext_bytes, stored,
                   summary.plaintext_sha256, seconds, problem)  # fmt: skip


async def read_legacy(storage: StorageService, key: str, *, sink=None) -> Checked:
    """A legacy `pg_dump | gzip` object read to its end: the gzip CRC and length checked
    (a truncated upload fails), plaintext to `sink` when given."""
    started = time.perf_counter()
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    sha = hashlib.sha256()
    stored = plain_bytes = 0
    try:
        async with contextlib.aclosing(storage.get_stream(key)) as stream:
            async for piece in stream:
                stored += len(piece)
                data = inflate.decompress(piece)
                while inflate.eof and inflate.unused_data:  # concatenated gzip members
                    rest = inflate.unused_data
                    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    data += inflate.decompress(rest)
                sha.update(data)
                plain_bytes += len(data)
                if sink is not None and data:
                    await asyncio.to_thread(sink.write, data)
        ok, problem = inflate.eof, None if inflate.eof else "the gzip stream ends early (truncated)"
    except zlib.error as exc:
        ok, problem = False, f"not a valid gzip stream: {exc}"
    return Checked(ok, 0, plain_bytes, stored, sha.hexdigest(), time.perf_counter() - started, problem)


@contextlib.contextmanager
def private_dir(prefix: str):
    """A 0700 temporary directory, removed with everything in it on the way out."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def run_tool(name: str, args: list[str], dsn: str, *, stdin_path: Path | None = None) -> float:
    """Run pg_restore/psql against `dsn` (its password in the environment); the seconds it
    took. Raises BackendFailed with its last error line."""
    bare, env = tool_env(dsn, "opsconsole-restore")
    argv = [pg_tool(name), *args, f"--dbname={bare}"]
    started = time.perf_counter()

    def call() -> subprocess.CompletedProcess:
        with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
            return subprocess.run(argv, stdin=stdin, capture_output=True, env=env)

    done = await asyncio.to_thread(call)
    if done.returncode != 0:
        raise tool_error(name, done.returncode, done.stderr, dsn)
    return time.perf_counter() - started


async def restore_file(
    path: Path, dsn: str, *, legacy: bool, jobs: int = 4, clean: bool = False, keep_acl: bool = False
) -> float:
    """Restore a checked archive at `path` into `dsn`: pg_restore -j for ours, psql for a
    legacy plain SQL dump. Stops at the first error. `keep_acl` restores owners and grants
    (the live database: the console's own role must keep its access); otherwise the
    restoring login owns everything. Returns the seconds it took."""
    if legacy:
        args = [
            "--no-psqlrc",
            "--quiet",
            "--set=ON_ERROR_STOP=1",
            "--single-transaction",
            "--output=/dev/null",
        ]
        return await run_tool("psql", args, dsn, stdin_path=path)
    args = [f"--jobs={max(jobs, 1)}", "--exit-on-error"]
    if not keep_acl:
        args += ["--no-owner", "--no-acl"]
    if clean:
        args += ["--clean", "--if-exists"]
    return await run_tool("pg_restore", [*args, str(path)], dsn)


@dataclass(frozen=True)
class Evidence:
    """What a restore drill found in the restored database."""

    tables: dict[str, dict[str, int | None]]  # table -> {"expected": n, "found": m}
    indexes_checked: int
    index_failures: tuple[str, ...]
    amcheck: str  # "ok", or why it could not run
    smoke: int | None
    smoke_error: str | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def mismatched(self) -> list[str]:
        return [t for t, v in self.tables.items() if v["expected"] != v["found"]]

    @property
    def ok(self) -> bool:
        return (not self.mismatched and not self.index_failures and self.amcheck == "ok"
                and self.smoke_error is None)  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "tables": self.tables, "mismatched": self.mismatched,
                "indexes_checked": self.indexes_checked, "index_failures": list(self.index_failures),
                "amcheck": self.amcheck, "smoke_query": SMOKE_QUERY, "smoke": self.smoke,
                "smoke_error": self.smoke_error,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}  # fmt: skip


async def gather_evidence(dsn: str, expected_tables: dict[str, int], where: str) -> Evidence:
    """Row counts of every table against the manifest, bt_index_check on every B-tree
    index, and the smoke query, in the restored database at `dsn`."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except Exception as exc:
        raise explain_failure(exc, where, 10) from exc
    seconds: dict[str, float] = {}
    try:
        started = time.perf_counter()
        found = {r["table"]: int(r["rows"]) async for r in named_queries().table_row_counts(conn)}
        seconds["row_counts"] = time.perf_counter() - started
        tables = {t: {"expected": expected_tables.get(t), "found": found.get(t)}
                  for t in sorted(set(found) | set(expected_tables))}  # fmt: skip
        started = time.perf_counter()
        failures: list[str] = []
        checked = 0
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            amcheck = "ok"
        except asyncpg.PostgresError as exc:
            amcheck = f"amcheck could not be installed in the scratch database: {exc}"
        if amcheck == "ok":
            for row in [r async for r in named_queries().btree_indexes(conn)]:
                try:
                    await conn.execute("SELECT bt_index_check($1::oid::regclass)", row["oid"])
                except asyncpg.PostgresError as exc:
                    failures.append(f"{row['index']}: {exc}")
                checked += 1
        seconds["amcheck"] = time.perf_counter() - started
        started = time.perf_counter()
        smoke, smoke_error = None, None
        try:
            smoke = int(await conn.fetchval(SMOKE_QUERY))
        except asyncpg.PostgresError as exc:
            smoke_error = str(exc)
        seconds["smoke"] = time.perf_counter() - started
        return Evidence(tables, checked, tuple(failures), amcheck, smoke, smoke_error, seconds)
    except ServiceError:
        raise
    except Exception as exc:
        raise explain_failure(exc, where, 10) from exc
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)


def dsn_for_database(dsn: str, database: str) -> str:
    """`dsn` pointing at another database of the same server."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))
    import re

    if re.search(r"\bdbname\s*=", dsn):
        return re.sub(r"\bdbname\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", f"dbname={database}", dsn)
    return f"{dsn} dbname={database}"


async def scratch_database(admin_dsn: str, name: str, where: str, *, drop: bool = False) -> None:
    """Create (or drop) database `name` (a name we made: [a-z0-9_]) on the server of
    `admin_dsn`. Raises ServiceError: a login that may not create databases says so."""
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
    except Exception as exc:
        raise explain_failure(exc, where, 10) from exc
    try:
        if drop:
            sql = await conn.fetchval(
                "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text)", name
            )
        else:
            sql = await conn.fetchval(
                "SELECT format('CREATE DATABASE %I TEMPLATE template0', $1::text)", name
            )
        await conn.execute(sql)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise BackendFailed(
            f"Postgres at {where}: this login may not create or drop databases ({exc}); set "
            "OPSCONSOLE_RESTORE_DSN to a login with CREATEDB, or restore with --into DSN",
            backend="postgres",
        ) from exc
    except Exception as exc:
        raise explain_failure(exc, where, 10) from exc
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)
