"""StorageService against a real S3 protocol server (moto's, on loopback, from the
sandbox): streamed multipart round trip, paged listing, and that every failed upload
(source raising, S3 gone mid-upload, cancellation) leaves neither an object nor parts."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from console.sandbox.s3 import S3Server
from services.errors import BackendFailed, Unreachable
from services.storage import MiB, StorageService, part_size_for
from tests.tcp_proxy import TcpProxy

PART = 5 * MiB  # S3's (and moto's) smallest part but the last


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket(f"backups-{uuid.uuid4().hex[:12]}")


def storage_for(server: S3Server, bucket: str, url: str | None = None, **kwargs) -> StorageService:
    return StorageService(
        url or server.url, server.access_key, server.secret_key, bucket, use_ssl=False, **kwargs
    )


def in_progress(server: S3Server, bucket: str) -> list[dict]:
    return server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def keys(server: S3Server, bucket: str) -> list[str]:
    return [item["Key"] for item in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


async def generated(total: int, chunk: int = MiB, seed: bytes = b"opsconsole") -> AsyncIterator[bytes]:
    """`total` bytes of reproducible data, `chunk` at a time (each chunk made fresh, as a
    dump's would be)."""
    block = 0
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        head = hashlib.sha256(seed + block.to_bytes(8, "big")).digest()
        yield (head * (size // len(head) + 1))[:size]
        sent += size
        block += 1


async def test_a_multipart_object_comes_back_byte_for_byte(s3_server, bucket):
    storage = storage_for(s3_server, bucket)
    seen: list[int] = []
    total = 12 * MiB + 12345  # three parts: 5 MiB, 5 MiB, and the rest
    result = await storage.upload_stream(
        "database/one.dump", generated(total, chunk=300_000), part_size=PART,
        metadata={"sha256": "abc"}, on_progress=seen.append,
    )  # fmt: skip
    assert (result.size, result.parts, result.part_size) == (total, 3, PART)
    assert seen == [PART, 2 * PART, total]
    expected = hashlib.sha256(b"".join([c async for c in generated(total, chunk=300_000)])).hexdigest()
    assert result.sha256 == expected

    got = hashlib.sha256()
    async for chunk in storage.get_stream("database/one.dump"):
        got.update(chunk)
    assert got.hexdigest() == expected
    head = await storage.head("database/one.dump")
    assert head.size == total and head.metadata == {"sha256": "abc"}
    assert in_progress(s3_server, bucket) == []

    await storage.delete("database/one.dump")
    assert keys(s3_server, bucket) == []
    with pytest.raises(BackendFailed, match="404"):
        await storage.head("database/one.dump")


async def test_an_empty_source_stores_an_empty_object(s3_server, bucket):
    storage = storage_for(s3_server, bucket)
    result = await storage.upload_stream("empty", generated(0))
    assert (result.size, result.parts) == (0, 1)
    assert [c async for c in storage.get_stream("empty")] == []


async def test_listing_comes_in_pages_of_the_asked_size(s3_server, bucket):
    client = s3_server.client()
    for n in range(23):
        client.put_object(Bucket=bucket, Key=f"saves/server-{n:03}.tar", Body=b"x" * n)
    client.put_object(Bucket=bucket, Key="database/elsewhere", Body=b"")
    storage = storage_for(s3_server, bucket)

    pages = [page async for page in storage.list_objects("saves/", page_size=10)]
    assert [len(page) for page in pages] == [10, 10, 3]
    listed = [item for page in pages for item in page]
    assert [item.key for item in listed] == [f"saves/server-{n:03}.tar" for n in range(23)]
    assert [item.size for item in listed] == list(range(23))
    assert all(item.modified is not None for item in listed)


async def test_a_source_that_fails_mid_upload_leaves_no_parts_and_no_object(s3_server, bucket):
    storage = storage_for(s3_server, bucket)

    async def dump_that_dies() -> AsyncIterator[bytes]:
        async for chunk in generated(11 * MiB):  # two parts sent, then the dump fails
            yield chunk
        raise RuntimeError("pg_dump exited with status 1")

    with pytest.raises(BackendFailed) as raised:
        await storage.upload_stream("database/broken.dump", dump_that_dies(), part_size=PART)
    message = str(raised.value)
    assert "source failed" in message and "pg_dump exited with status 1" in message
    assert "aborted" in message
    assert in_progress(s3_server, bucket) == []
    assert keys(s3_server, bucket) == []


async def test_a_cancelled_upload_is_aborted(s3_server, bucket):
    storage = storage_for(s3_server, bucket)
    stuck = asyncio.Event()

    async def slow_dump() -> AsyncIterator[bytes]:
        async for chunk in generated(6 * MiB):
            yield chunk
        stuck.set()
        await asyncio.Event().wait()  # a dump that hangs after one part
        yield b""

    task = asyncio.create_task(storage.upload_stream("database/cancelled.dump", slow_dump(), part_size=PART))
    # Until the dump hangs, or the upload ends by itself (failing, say, on a loaded machine):
    # then its own error is the test's failure, instead of waiting for `stuck` for ever.
    waiting = asyncio.ensure_future(stuck.wait())
    await asyncio.wait({task, waiting}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert stuck.is_set() and not task.done(), task.exception() if task.done() else "no part within 60 s"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert in_progress(s3_server, bucket) == []
    assert keys(s3_server, bucket) == []


async def test_s3_gone_mid_upload_is_a_clear_error_and_leaves_no_orphan_once_back(s3_server, bucket):
    # A proxy in front of the shared server: down() cuts the live connections too, as a
    # stopped server does; moto keeps the upload's state, so what was left is visible after.
    proxy = TcpProxy("127.0.0.1", s3_server.port)
    proxy.up()
    try:
        storage = storage_for(s3_server, bucket, url=f"http://127.0.0.1:{proxy.port}", abort_grace=20)

        async def dump() -> AsyncIterator[bytes]:
            async for chunk in generated(16 * MiB):
                yield chunk
                if chunk and sent_so_far(chunk):
                    await asyncio.to_thread(proxy.down)
                    # S3 comes back later than the client's one retry (botocore's
                    # max_attempts=1), while the upload is trying to abort itself.
                    threading.Timer(3.0, proxy.up).start()

        count = [0]

        def sent_so_far(_chunk: bytes) -> bool:
            count[0] += 1
            return count[0] == 11  # after the second part started

        with pytest.raises(Unreachable) as raised:
            await storage.upload_stream("database/cut.dump", dump(), part_size=PART)
        message = str(raised.value)
        assert f"S3 at http://127.0.0.1:{proxy.port} cannot be reached" in message
        assert "database/cut.dump" in message and "aborted" in message
        assert s3_server.secret_key not in message
        assert in_progress(s3_server, bucket) == []
        assert keys(s3_server, bucket) == []
    finally:
        proxy.close()


async def test_an_upload_that_cannot_abort_says_so_and_the_sweep_clears_it(s3_server, bucket):
    proxy = TcpProxy("127.0.0.1", s3_server.port)
    proxy.up()
    try:
        storage = storage_for(s3_server, bucket, url=f"http://127.0.0.1:{proxy.port}", abort_grace=0.5)

        async def dump() -> AsyncIterator[bytes]:
            async for chunk in generated(6 * MiB):
                yield chunk
            await asyncio.to_thread(proxy.down)
            yield b"more"

        with pytest.raises(Unreachable, match="could not be aborted"):
            await storage.upload_stream("database/orphan.dump", dump(), part_size=PART)
        assert len(in_progress(s3_server, bucket)) == 1
        proxy.up()
        assert await storage.abort_incomplete_uploads("database/") == 1
        assert in_progress(s3_server, bucket) == []
    finally:
        proxy.close()


async def test_errors_name_the_endpoint_and_never_the_credentials(s3_server):
    storage = storage_for(s3_server, "no-such-bucket")
    with pytest.raises(BackendFailed) as raised:
        await storage.upload_stream("x", generated(10))
    assert "NoSuchBucket" in str(raised.value) and s3_server.url in str(raised.value)
    assert s3_server.secret_key not in str(raised.value)

    gone = S3Server()  # a port nobody listens on
    storage = StorageService(gone.url, "k", "secret-key", "b", use_ssl=False)
    with pytest.raises(Unreachable, match=f"S3 at {gone.url} cannot be reached"):
        async for _ in storage.list_objects():
            pass


def test_part_size_keeps_a_terabyte_under_ten_thousand_parts():
    assert part_size_for(None) == 8 * MiB
    assert part_size_for(10 * MiB) == 8 * MiB
    tb = 10**12
    assert tb / part_size_for(tb) < 9_000 < 10_000
    assert 2 * tb / part_size_for(2 * tb) < 10_000


async def test_uploading_200_mib_holds_a_few_parts_in_memory():
    # moto in a child process: in this one, it would keep the 200 MiB in our memory.
    with S3Server(in_process=False) as server:
        bucket = server.create_bucket("big")
        await _upload_200_mib(server, bucket)


async def _upload_200_mib(s3_server: S3Server, bucket: str) -> None:
    storage = storage_for(s3_server, bucket)
    # The service's first call parses botocore's S3 model (~10 MiB, once per service, not
    # per upload): done before measuring, so the figure is the upload's own.
    await storage.ping()
    total = 200 * MiB
    tracemalloc.start()
    try:
        result = await storage.upload_stream("database/big.dump", generated(total), part_size=PART)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"200 MiB upload: peak traced memory {peak / MiB:.1f} MiB, {result.seconds:.1f} s")
    assert result.size == total and result.parts == 40
    assert peak < 40 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"


async def test_a_stopped_sandbox_server_is_unreachable_and_has_its_buckets_when_back():
    server = S3Server()
    server.start()
    try:
        bucket = server.create_bucket("kept")
        server.client().put_object(Bucket=bucket, Key="saves/a", Body=b"a")
        storage = storage_for(server, bucket)
        server.stop()
        with pytest.raises(Unreachable, match=f"S3 at {server.url} cannot be reached"):
            await storage.ping()
        server.start()
        assert [item.key for page in [p async for p in storage.list_objects()] for item in page] == [
            "saves/a"
        ]
    finally:
        server.stop()
