"""The embedded cluster behind the demo and the suite: starts on 127.0.0.1 only, adopts
itself when already running, survives a stale pid file, and stops cleanly."""

from __future__ import annotations

import asyncio
import shutil
import socket

import asyncpg
import pytest

from console.sandbox.pgcluster import ClusterError, EmbeddedPostgres, find_pg_bin_dir, make_private_tmpdir


@pytest.fixture
def root():
    path = make_private_tmpdir("opsconsole-pgc-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _query(dsn: str, sql: str):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_finds_the_newest_server_binaries():
    assert (find_pg_bin_dir() / "postgres").exists()


def test_password_cluster_listens_on_loopback_only_and_restarts_on_its_port(root):
    cluster = EmbeddedPostgres(root / "data", password="s3cret pass/word")
    assert cluster.init() is True
    assert cluster.init() is False  # a second init reuses the cluster
    try:
        cluster.start()
        dsn = cluster.dsn()
        assert asyncio.run(_query(dsn, "SHOW listen_addresses")) == "127.0.0.1"
        assert asyncio.run(_query(dsn, "SHOW unix_socket_directories")) == ""
        with pytest.raises(asyncpg.InvalidPasswordError):
            asyncio.run(_query(dsn.replace("s3cret", "wrong"), "SELECT 1"))
        port = cluster.port

        again = EmbeddedPostgres(root / "data", password="s3cret pass/word")
        again.start()  # adopts the running server
        assert again.port == port
        cluster.stop()
        assert not cluster.running()
        cluster.stop()  # stopping a stopped cluster is a no-op

        (root / "data" / "postmaster.pid").write_text(f"999999\n{root}/data\n0\n{port}\n")
        again.start()  # the stale pid file from a crash does not block a restart
        assert again.port == port
        assert asyncio.run(_query(again.dsn(), "SELECT 1")) == 1
    finally:
        cluster.stop()


def test_a_taken_port_moves_the_cluster_elsewhere(root):
    cluster = EmbeddedPostgres(root / "data")
    cluster.init()
    cluster.start()
    port = cluster.port
    cluster.stop()
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        moved = EmbeddedPostgres(root / "data")
        moved.start()
        try:
            assert moved.port != port
            assert asyncio.run(_query(moved.dsn(), "SELECT 1")) == 1
        finally:
            moved.stop()
    finally:
        blocker.close()


def test_starting_without_a_cluster_says_so(root):
    with pytest.raises(ClusterError, match="run init"):
        EmbeddedPostgres(root / "nothing").start()
