"""SavesService: the game servers' saves bucket, as the AGIS manual watches it (`mc du`,
`mc ls --recursive | tail -20`): usage by prefix, the newest objects and the ones past
retention, all from one paged pass that keeps only bounded tallies; and a paged listing."""

from __future__ import annotations

import contextlib
import heapq
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.errors import NotConfigured
from services.storage import StorageService, StoredObject

RECENT = 20  # what `mc ls --recursive | tail -20` shows
OLDEST = 10  # the oldest objects past retention, named
TOP_PREFIXES = 50  # prefixes named by size; the rest are one "other" line
LIST_PAGE = 1000  # S3's largest page
MAX_PAGE = 1000


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


@dataclass(frozen=True)
class SaveObject:
    key: str
    size: int
    modified: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, "modified": _iso(self.modified)}


@dataclass(frozen=True)
class PrefixUsage:
    """What one prefix holds. `loose`: only the objects directly in it (its sub-prefixes
    are counted on their own lines), as for the objects at the top of the bucket."""

    prefix: str
    objects: int
    bytes: int
    loose: bool = False

    @property
    def label(self) -> str:
        if not self.loose:
            return self.prefix
        return f"{self.prefix} (loose objects)" if self.prefix else "(top level)"

    def as_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "objects": self.objects, "bytes": self.bytes, "loose": self.loose}


@dataclass(frozen=True)
class SavesSummary:
    """The bucket (or the part under `prefix`) at `listed_at`, grouped `depth` levels deep."""

    bucket: str
    prefix: str
    depth: int
    retention_days: int
    listed_at: datetime
    objects: int
    bytes: int
    prefixes: tuple[PrefixUsage, ...]  # the largest TOP_PREFIXES groups, largest first
    prefix_count: int  # every group, named or not
    recent: tuple[SaveObject, ...]  # the RECENT newest, newest first
    expired_objects: int  # modified before `cutoff`
    expired_bytes: int
    oldest_expired: tuple[SaveObject, ...]  # the OLDEST oldest past retention, oldest first

    @property
    def cutoff(self) -> datetime:
        return self.listed_at - timedelta(days=self.retention_days)

    @property
    def other_prefixes(self) -> PrefixUsage | None:
        """The groups not named in `prefixes`, as one line; None when all are named."""
        hidden = self.prefix_count - len(self.prefixes)
        if hidden <= 0:
            return None
        objects = self.objects - sum(p.objects for p in self.prefixes)
        size = self.bytes - sum(p.bytes for p in self.prefixes)
        return PrefixUsage(f"({hidden:,} more prefixes)", objects, size)

    def as_json(self) -> dict[str, Any]:
        other = self.other_prefixes
        return {
            "bucket": self.bucket, "prefix": self.prefix, "depth": self.depth,
            "listed_at": _iso(self.listed_at), "retention_days": self.retention_days,
            "objects": self.objects, "bytes": self.bytes,
            "prefixes": [p.as_json() for p in self.prefixes], "prefix_count": self.prefix_count,
            "other_prefixes": other.as_json() if other else None,
            "recent": [o.as_json() for o in self.recent],
            "past_retention": {"cutoff": _iso(self.cutoff), "objects": self.expired_objects,
                               "bytes": self.expired_bytes,
                               "oldest": [o.as_json() for o in self.oldest_expired]},
        }  # fmt: skip


@dataclass(frozen=True)
class SavesPage:
    """One page of a listing; `next_after` is the `after` of the next page (None: the last)."""

    bucket: str
    prefix: str
    after: str | None
    objects: tuple[SaveObject, ...]
    next_after: str | None

    def as_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "prefix": self.prefix, "after": self.after,
                "objects": [o.as_json() for o in self.objects], "next_after": self.next_after}  # fmt: skip


class _Tally:
    """Bounded running figures of one pass: groups closed as the listing leaves them."""

    def __init__(self, prefix: str, depth: int, cutoff: datetime) -> None:
        self.prefix, self.depth, self.cutoff = prefix, depth, cutoff
        self.objects = self.bytes = 0
        self.expired_objects = self.expired_bytes = 0
        self.groups = 0
        # S3 lists keys in (UTF-8) order, so the keys under any prefix come together: a
        # group is open from its first key until a key outside it, and the open ones are
        # always nested prefixes of the last key, at most depth + 1 of them.
        self.open: list[list[Any]] = []  # [prefix, loose, objects, bytes], outermost first
        self.top: list[tuple[int, int, str, bool]] = []  # min-heap of the largest groups
        self.recent: list[tuple[datetime, str, int]] = []  # min-heap of the newest objects
        self.oldest: list[tuple[float, str, int, datetime]] = []  # max-heap (negated) of the oldest expired

    def group_of(self, key: str) -> tuple[str, bool]:
        parts = key[len(self.prefix) :].split("/")
        if len(parts) > self.depth:
            return self.prefix + "/".join(parts[: self.depth]) + "/", False
        return self.prefix + "".join(part + "/" for part in parts[:-1]), True

    def add(self, item: StoredObject) -> None:
        key, size, modified = item.key, item.size, item.modified
        self.objects += 1
        self.bytes += size
        group, loose = self.group_of(key)
        while self.open and not key.startswith(self.open[-1][0]):
            self._close(self.open.pop())
        if not self.open or self.open[-1][0] != group:
            self.open.append([group, loose, 0, 0])
        self.open[-1][2] += 1
        self.open[-1][3] += size
        if modified is None:
            return
        _keep(self.recent, (modified, key, size), RECENT)
        if modified < self.cutoff:
            self.expired_objects += 1
            self.expired_bytes += size
            _keep(self.oldest, (-modified.timestamp(), key, size, modified), OLDEST)

    def _close(self, group: list[Any]) -> None:
        prefix, loose, objects, size = group
        self.groups += 1
        _keep(self.top, (size, objects, prefix, loose), TOP_PREFIXES)

    def finish(self) -> None:
        while self.open:
            self._close(self.open.pop())


def _keep(heap: list, item: tuple, most: int) -> None:
    """Keep the `most` largest items in min-heap `heap`."""
    if len(heap) < most:
        heapq.heappush(heap, item)
    elif item > heap[0]:
        heapq.heapreplace(heap, item)


class SavesService:
    """Reads the saves bucket through `storage` (a StorageService on that bucket)."""

    backend = "s3"

    def __init__(self, storage: StorageService, retention_days: int = 30) -> None:
        self.storage = storage
        self.retention_days = retention_days

    @property
    def bucket(self) -> str | None:
        return self.storage.bucket

    @property
    def configured(self) -> bool:
        return self.storage.configured

    @property
    def unconfigured(self) -> str | None:
        """Why the saves cannot be read, naming the setting; None when configured."""
        if not self.storage.endpoint:
            return "S3 is not configured (S3_ENDPOINT)"
        if not self.storage.bucket:
            return "the server-saves bucket is not configured (OPSCONSOLE_SAVES_BUCKET)"
        return None

    def _require(self) -> None:
        if self.unconfigured:
            raise NotConfigured(self.unconfigured, backend=self.backend)

    async def summary(self, prefix: str = "", *, depth: int = 1, now: datetime | None = None) -> SavesSummary:
        """Usage by prefix (`depth` levels below `prefix`), the newest objects, and those
        modified more than `retention_days` before `now` (default: the current time), from
        one pass over the listing, a page at a time. Raises ServiceError (NotConfigured
        without an endpoint or a saves bucket)."""
        self._require()
        if depth < 1:
            raise ValueError("depth is at least 1")
        now = _aware(now or datetime.now(UTC))
        tally = _Tally(prefix, depth, now - timedelta(days=self.retention_days))
        pages = self.storage.list_objects(prefix, page_size=LIST_PAGE)
        async with contextlib.aclosing(pages):
            async for page in pages:
                for item in page:
                    tally.add(item)
        tally.finish()
        return SavesSummary(
            bucket=self.storage.bucket or "",
            prefix=prefix,
            depth=depth,
            retention_days=self.retention_days,
            listed_at=now,
            objects=tally.objects,
            bytes=tally.bytes,
            prefixes=tuple(
                PrefixUsage(p, objects, size, loose)
                for size, objects, p, loose in sorted(tally.top, key=lambda t: (-t[0], t[2]))
            ),
            prefix_count=tally.groups,
            recent=tuple(SaveObject(k, s, m) for m, k, s in sorted(tally.recent, reverse=True)),
            expired_objects=tally.expired_objects,
            expired_bytes=tally.expired_bytes,
            oldest_expired=tuple(SaveObject(k, s, m) for _, k, s, m in sorted(tally.oldest, reverse=True)),
        )

    async def page(self, prefix: str = "", after: str | None = None, limit: int = 100) -> SavesPage:
        """The objects under `prefix` after key `after`, in key order, at most `limit`
        (1 to 1000). Raises ServiceError."""
        self._require()
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit is 1 to {MAX_PAGE}")
        items, more = await self.storage.list_page(prefix, start_after=after, limit=limit)
        objects = tuple(SaveObject(i.key, i.size, i.modified) for i in items)
        return SavesPage(
            bucket=self.storage.bucket or "",
            prefix=prefix,
            after=after,
            objects=objects,
            next_after=objects[-1].key if more and objects else None,
        )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def saves_service(
    endpoint: str | None,
    access_key: str | None,
    secret_key: str | None,
    bucket: str | None,
    *,
    use_ssl: bool = True,
    retention_days: int = 30,
) -> SavesService:
    """The SavesService for `bucket` on the backups' S3 endpoint, with its credentials."""
    storage = StorageService(endpoint, access_key, secret_key, bucket, use_ssl=use_ssl)
    return SavesService(storage, retention_days=retention_days)
