"""The sandbox's game-server saves: a few thousand small encrypted-looking objects in the
saves bucket, as the bot writes them (a world save per server per day, exports players ask
for, maps they upload), spread over two months so that some are past the 30-day retention."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from console.sandbox.s3 import S3Server

SAVES_BUCKET = "game-saves"
BACKUPS_BUCKET = "agis-backups"
SEED = 11  # the same keys every run


def saves(now: datetime, *, servers: int = 110, seed: int = SEED) -> Iterator[tuple[str, bytes, datetime]]:
    """(key, body, last modified) of every seeded object: about 2,700 world saves under
    `servers/<uuid>/`, 300 exports under `exports/<discord user id>/`, 60 uploaded maps
    under `uploads/<discord user id>/`; bodies of 0.2 to 6 KiB of random bytes (moto keeps
    them in memory), dates up to 60 days before `now`."""
    rng = random.Random(seed)
    today = now.astimezone(UTC).replace(hour=4, minute=0, second=0, microsecond=0)
    if today > now:
        today -= timedelta(days=1)

    def body(scale: int) -> bytes:
        return os.urandom(rng.randint(200, 1024) * scale)

    names = []
    for _ in range(servers):
        server = uuid.UUID(int=rng.getrandbits(128), version=4)
        scale = rng.choice((1, 1, 2, 3, 6))  # a modded world saves more
        first, last = rng.randint(20, 45), rng.choice((0, 0, 0, 0, 3, 12, 35))  # days ago
        names.append(f"{rng.choice(('rust', 'valheim', 'minecraft', 'ark'))}-{server.hex[:6]}")
        for days_ago in range(first, last - 1, -1):
            when = today - timedelta(days=days_ago, minutes=rng.randint(0, 50))
            yield f"servers/{server}/world-{when:%Y%m%d-%H%M%S}.tar.gz.enc", body(scale), when
    for _ in range(300):
        user = rng.randint(10**17, 10**18)
        when = now - timedelta(minutes=rng.randint(30, 60 * 24 * 60))
        yield f"exports/{user}/{rng.choice(names)}-{when:%Y%m%d-%H%M%S}.tar.gz.enc", body(4), when
    for n in range(60):
        user = rng.randint(10**17, 10**18)
        when = now - timedelta(minutes=rng.randint(60, 60 * 24 * 50))
        yield f"uploads/{user}/custom-map-{n:03d}.zip.enc", body(6), when


def seed_saves(server: S3Server, bucket: str = SAVES_BUCKET, now: datetime | None = None) -> int:
    """Create `bucket` and fill it with `saves(now)` unless it holds objects already (moto
    keeps its buckets for the life of the process); returns how many objects it stored."""
    server.create_bucket(bucket)
    if server.client().list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount", 0):
        return 0
    return server.store(bucket, saves(now or datetime.now(UTC)))
