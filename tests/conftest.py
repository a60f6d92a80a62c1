"""Shared fixtures: one throwaway PostgreSQL cluster per test session, two migrated
template databases (empty, seeded), and a fresh clone of one for each test that asks, as
the owner of schema ops (`seeded_db`, for setting up) or as the console's runtime login
role (`seeded_runtime_db`, what the console itself may do)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from console.sandbox.pgcluster import EmbeddedPostgres, make_private_tmpdir
from console.sandbox.seed import seed_business
from services.migrations import migrate

EMPTY_TEMPLATE = "tpl_empty"
SEEDED_TEMPLATE = "tpl_seeded"
# The console's login role in the tests: a member of ops_runtime (made by the migrations),
# owning nothing. The test cluster trusts 127.0.0.1, so it needs no password.
RUNTIME_LOGIN = "ops_console"


@dataclass(frozen=True)
class SeededInfo:
    now: datetime


async def _build_templates(cluster: EmbeddedPostgres) -> SeededInfo:
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        for name in (EMPTY_TEMPLATE, SEEDED_TEMPLATE):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    now = datetime.now(UTC)
    for name in (EMPTY_TEMPLATE, SEEDED_TEMPLATE):
        conn = await asyncpg.connect(cluster.dsn(name))
        try:
            await migrate(conn, with_reference=True)
            if name == SEEDED_TEMPLATE:
                await seed_business(conn, now=now)
        finally:
            await conn.close()
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute(f'CREATE ROLE "{RUNTIME_LOGIN}" LOGIN IN ROLE ops_runtime')
    finally:
        await admin.close()
    return SeededInfo(now=now)


def as_runtime(dsn: str) -> str:
    """The same database's DSN for the console's runtime login role."""
    parts = urlsplit(dsn)
    netloc = f"{quote(RUNTIME_LOGIN, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL from the machine's binaries, on 127.0.0.1, for the whole session."""
    root = make_private_tmpdir("opsconsole-tests-")
    cluster = EmbeddedPostgres(root / "data")
    try:
        cluster.init()
        cluster.start()
        cluster.seeded_info = asyncio.run(_build_templates(cluster))  # type: ignore[attr-defined]
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _clone(cluster: EmbeddedPostgres, template: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield cluster.dsn(name)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_db(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """DSN of a fresh database with the reference and ops schemas and no rows."""
    yield from _clone(pg_cluster, EMPTY_TEMPLATE)


@pytest.fixture
def seeded_db(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """DSN of a fresh database holding the demo business (seeded at session start)."""
    yield from _clone(pg_cluster, SEEDED_TEMPLATE)


@pytest.fixture
def empty_runtime_db(empty_db: str) -> str:
    """`empty_db` as the console's runtime role (member of ops_runtime, owns nothing)."""
    return as_runtime(empty_db)


@pytest.fixture
def seeded_runtime_db(seeded_db: str) -> str:
    """`seeded_db` as the console's runtime role (member of ops_runtime, owns nothing)."""
    return as_runtime(seeded_db)


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's state dir (where AuditService keeps its audit anchors by default) is a
    fresh temporary directory in every test, child processes included: no test writes to
    the real one, and no test sees another's anchors."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def blank_db(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """DSN of a fresh database with nothing in it at all (for migration tests)."""
    yield from _clone(pg_cluster, "template0")


async def wait_until(pilot, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `predicate()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.05)


FAKE_KEYS = ("test-service-role-key", "sk_test_trust_0123456789", "ptla_trust_0123456789")


@pytest.fixture
def fakes(seeded_db: str):
    """The provisioning functions, Stripe and the panel as loopback fakes on the seeded
    business, each recording its requests (method, path); keys from FAKE_KEYS."""
    from types import SimpleNamespace

    from console.sandbox.fake_functions import FakeFunctions
    from console.sandbox.fake_panel import FakePanel
    from console.sandbox.fake_stripe import FakeStripe

    key, stripe_key, panel_key = FAKE_KEYS
    made = SimpleNamespace(
        functions=FakeFunctions(seeded_db, service_key=key, provision_delay=0.3),
        stripe=FakeStripe(stripe_key, dsn=seeded_db),
        panel=FakePanel(panel_key),
    )
    for fake in vars(made).values():
        fake.start()
    yield made
    for fake in vars(made).values():
        fake.stop()
