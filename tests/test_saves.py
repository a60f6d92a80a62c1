"""SavesService against a real S3 protocol server (moto's, on loopback): usage by prefix as
`mc du` gives it, the 20 newest, what is past retention, from one paged pass in bounded
memory; a paged listing; and 'not configured' and S3 errors as operators should read them."""

from __future__ import annotations

import random
import socket
import tracemalloc
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from console.sandbox.s3 import S3Server
from services.errors import BackendFailed, NotConfigured, Unreachable
from services.saves import RECENT, PrefixUsage, SavesService, saves_service
from services.storage import StoredObject

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def service_for(server: S3Server, bucket: str | None, **kwargs) -> SavesService:
    return saves_service(server.url, server.access_key, server.secret_key, bucket, use_ssl=False, **kwargs)


def generated(count: int, seed: int = 7) -> list[tuple[str, bytes, datetime]]:
    """`count` saves over 60 days before NOW, under servers/<uuid>/ and exports/<user>/,
    plus loose objects where key order interleaves them with prefixes ('a-b/' < 'a.txt' < 'a/')."""
    rng = random.Random(seed)
    servers = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(40)]
    items = []
    for n in range(count):
        when = NOW - timedelta(minutes=rng.randint(1, 60 * 24 * 60))
        if n % 10:
            key = f"servers/{rng.choice(servers)}/world-{n:05d}.tar.gz.enc"
        else:
            key = f"exports/{rng.randint(10**17, 10**18)}/export-{n:05d}.tar.gz.enc"
        items.append((key, b"s" * rng.randint(1, 400), when))
    for key in ("a-b/x.enc", "a.txt", "a/b.enc", "a/b/c.enc", "a/bb.txt", "z.txt", "servers/readme.txt"):
        items.append((key, b"loose" * 3, NOW - timedelta(days=2)))
    return items


@pytest.fixture(scope="module")
def saves_bucket(s3_server: S3Server) -> tuple[str, list[tuple[str, bytes, datetime]]]:
    """A bucket of 3,000 saves, ~half of them older than 30 days (dated through moto's
    store: S3 has no call that sets a date), and two put through the S3 API just now."""
    bucket = s3_server.create_bucket(f"saves-{uuid.uuid4().hex[:10]}")
    items = generated(3000)
    assert s3_server.store(bucket, items) == len(items)
    client = s3_server.client()
    for key in ("servers/live/world-now.tar.gz.enc", "exports/live/now.tar.gz.enc"):
        client.put_object(Bucket=bucket, Key=key, Body=b"just now")
        items.append((key, b"just now", client.head_object(Bucket=bucket, Key=key)["LastModified"]))
    return bucket, items


def expected_groups(items, depth: int, prefix: str = "") -> dict[tuple[str, bool], list[int]]:
    """What each group holds, the obvious way (every object in memory)."""
    groups: dict[tuple[str, bool], list[int]] = defaultdict(lambda: [0, 0])
    for key, body, _ in items:
        if not key.startswith(prefix):
            continue
        parts = key[len(prefix) :].split("/")
        if len(parts) > depth:
            group = (prefix + "/".join(parts[:depth]) + "/", False)
        else:
            group = (prefix + "".join(p + "/" for p in parts[:-1]), True)
        groups[group][0] += 1
        groups[group][1] += len(body)
    return groups


async def test_summary_sums_the_bucket_by_prefix_and_names_the_newest_and_the_expired(
    s3_server, saves_bucket
):
    bucket, items = saves_bucket
    summary = await service_for(s3_server, bucket).summary(now=NOW)
    assert (summary.objects, summary.bytes) == (len(items), sum(len(b) for _, b, _ in items))

    # `mc du`: every top-level prefix with its objects and bytes, largest first; loose
    # objects at the top level ('a.txt', 'z.txt') are one line, whatever their key order.
    groups = expected_groups(items, depth=1)
    assert summary.prefix_count == len(groups)
    assert {(p.prefix, p.loose): [p.objects, p.bytes] for p in summary.prefixes} == groups
    assert [p.bytes for p in summary.prefixes] == sorted((p.bytes for p in summary.prefixes), reverse=True)
    assert summary.prefixes[0].prefix == "servers/"
    assert PrefixUsage("", 2, 30, loose=True) in summary.prefixes
    assert summary.other_prefixes is None

    # The 20 newest, newest first (the two put through the API a moment ago lead).
    newest = sorted(items, key=lambda i: (i[2], i[0]), reverse=True)[:RECENT]
    assert [o.key for o in summary.recent] == [key for key, _, _ in newest]
    assert {o.key for o in summary.recent[:2]} == {k for k, body, _ in items if body == b"just now"}

    # Past retention: modified more than 30 days before `now`.
    cutoff = NOW - timedelta(days=30)
    expired = sorted((i for i in items if i[2] < cutoff), key=lambda i: (i[2], i[0]))
    assert 1000 < len(expired) < 2000
    assert summary.expired_objects == len(expired)
    assert summary.expired_bytes == sum(len(body) for _, body, _ in expired)
    assert [o.key for o in summary.oldest_expired] == [k for k, _, _ in expired[:10]]
    assert summary.cutoff == cutoff
    assert summary.as_json()["past_retention"]["objects"] == len(expired)


async def test_deeper_usage_names_the_largest_prefixes_and_sums_the_rest(s3_server, saves_bucket):
    bucket, items = saves_bucket
    summary = await service_for(s3_server, bucket).summary(depth=2, now=NOW)
    groups = expected_groups(items, depth=2)
    assert summary.prefix_count == len(groups) > 50
    largest = sorted(groups.items(), key=lambda g: (-g[1][1], g[0][0]))[:50]
    assert [(p.prefix, p.loose, p.objects, p.bytes) for p in summary.prefixes] == [
        (prefix, loose, objects, size) for (prefix, loose), (objects, size) in largest
    ]
    other = summary.other_prefixes
    assert other is not None and other.prefix == f"({len(groups) - 50:,} more prefixes)"
    assert other.objects + sum(p.objects for p in summary.prefixes) == len(items)
    # 'servers/readme.txt' sits among the servers' prefixes in key order: still one group.
    assert groups[("servers/", True)] == [1, 15]

    scoped = await service_for(s3_server, bucket).summary("servers/", now=NOW)
    assert scoped.objects == sum(1 for k, _, _ in items if k.startswith("servers/"))
    assert scoped.other_prefixes is None  # 40 servers, 'live/' and the loose readme: all named
    assert {(p.prefix, p.loose): [p.objects, p.bytes] for p in scoped.prefixes} == expected_groups(
        items, 1, "servers/"
    )


async def test_retention_is_the_services_and_now_moves_objects_past_it(s3_server, saves_bucket):
    bucket, items = saves_bucket
    week = await service_for(s3_server, bucket, retention_days=7).summary(now=NOW)
    assert week.expired_objects == sum(1 for _, _, when in items if when < NOW - timedelta(days=7))
    # A month on, the saves put just now are past 30 days too: everything is.
    future = await service_for(s3_server, bucket).summary(now=datetime.now(UTC) + timedelta(days=31))
    assert future.expired_objects == len(items) and future.expired_bytes == future.bytes


async def test_an_object_put_through_s3_and_dated_back_is_past_retention(s3_server):
    bucket = s3_server.create_bucket(f"saves-{uuid.uuid4().hex[:10]}")
    client = s3_server.client()
    for n in range(3):
        client.put_object(Bucket=bucket, Key=f"servers/one/world-{n}.tar.gz.enc", Body=b"x" * (n + 1))
    s3_server.set_modified(bucket, "servers/one/world-0.tar.gz.enc", datetime.now(UTC) - timedelta(days=40))
    summary = await service_for(s3_server, bucket).summary()
    assert (summary.expired_objects, summary.expired_bytes) == (1, 1)
    assert [o.key for o in summary.oldest_expired] == ["servers/one/world-0.tar.gz.enc"]
    assert [o.key for o in summary.recent][-1] == "servers/one/world-0.tar.gz.enc"


async def test_the_listing_comes_a_page_at_a_time_after_a_key(s3_server, saves_bucket):
    bucket, items = saves_bucket
    saves = service_for(s3_server, bucket)
    wanted = sorted(k for k, _, _ in items if k.startswith("exports/"))
    seen, after, pages = [], None, 0
    while True:
        page = await saves.page("exports/", after=after, limit=120)
        assert len(page.objects) <= 120 and page.after == after
        seen += [o.key for o in page.objects]
        pages += 1
        if page.next_after is None:
            break
        assert page.next_after == page.objects[-1].key
        after = page.next_after
    assert seen == wanted and pages == -(-len(wanted) // 120)
    middle = await saves.page("exports/", after=wanted[100], limit=3)
    assert [o.key for o in middle.objects] == wanted[101:104]
    assert all(o.modified is not None and o.size > 0 for o in middle.objects)
    with pytest.raises(ValueError):
        await saves.page(limit=0)


async def test_not_configured_and_s3_failures_say_what_to_do(s3_server):
    without_bucket = service_for(s3_server, None)
    assert not without_bucket.configured
    with pytest.raises(NotConfigured, match="OPSCONSOLE_SAVES_BUCKET"):
        await without_bucket.summary()
    with pytest.raises(NotConfigured, match="S3_ENDPOINT"):
        await saves_service(None, None, None, "game-saves").page()

    with pytest.raises(BackendFailed, match="NoSuchBucket") as missing:
        await service_for(s3_server, "no-such-saves").summary()
    assert "s3://no-such-saves/" in str(missing.value) and s3_server.secret_key not in str(missing.value)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = saves_service(f"http://127.0.0.1:{closed}", "k", "s", "game-saves", use_ssl=False)
    with pytest.raises(Unreachable, match=f"127.0.0.1:{closed} cannot be reached"):
        await gone.summary()


class Endless:
    """A StorageService stand-in listing `count` objects, each page made when asked, as S3's are."""

    endpoint, bucket, configured = "http://s3.example", "game-saves", True

    def __init__(self, count: int) -> None:
        self.count = count

    async def list_objects(self, prefix: str = "", page_size: int = 1000) -> AsyncIterator[list]:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for first in range(0, self.count, page_size):
            yield [
                StoredObject(f"servers/{n // 50:06d}/world-{n:08d}.tar.gz.enc", 1000 + n % 7,
                             start + timedelta(seconds=n * 997 % 5_000_000), etag=f"{n:032x}")
                for n in range(first, min(first + page_size, self.count))
            ]  # fmt: skip


async def test_a_large_bucket_is_summed_in_bounded_memory():
    # 50,000 objects held as a list take ~22 MB; the pass keeps one page and the tallies.
    saves = SavesService(Endless(50_000))  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        summary = await saves.summary(depth=2, now=datetime(2026, 3, 1, tzinfo=UTC))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.objects == 50_000 and summary.prefix_count == 1_000
    assert len(summary.prefixes) == 50 and len(summary.recent) == RECENT and len(summary.oldest_expired) == 10
    assert 0 < summary.expired_objects < 50_000
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
