"""KubeWatch: the live rows of every kind the Nodes screen shows, for one context and
namespace: list, then watch from the list's resourceVersion; when a watch ends it goes on
from the last resourceVersion, when it breaks or answers 410 Gone the kind is re-listed,
and while the API server is away the kind is marked failing (its rows kept, their age
growing) and retried with backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.errors import ServiceError
from services.kube import RESOURCES, KubeService, api_error, list_call
from services.kube_model import object_key
from services.polling import Freshness

log = logging.getLogger(__name__)

# (kind, keys that changed; None when the kind was re-listed and may have changed wholesale)
OnChange = Callable[[str, "set[str] | None"], None]


@dataclass
class WatchState:
    """How one kind's watch is doing."""

    connected: bool = False
    error: str | None = None
    last_ok: float | None = None  # monotonic time of the last list or event or clean end
    failures: int = 0
    lists: int = 0  # how many times the kind was listed (1 + re-lists)
    events: int = 0


class KubeWatch:
    """Rows per kind, kept current by list + watch. Run `run()` in a worker; read `rows`."""

    def __init__(
        self,
        kube: KubeService,
        context: str | None,
        namespace: str,
        on_change: OnChange,
        *,
        kinds: tuple[str, ...] = tuple(RESOURCES),
        watch_seconds: int = 240,
        max_backoff: float = 15.0,
    ):
        self.kube = kube
        self.context = context
        self.namespace = namespace
        self.on_change = on_change
        self.kinds = kinds
        self.watch_seconds = watch_seconds
        self.max_backoff = max_backoff
        self.rows: dict[str, dict[str, Any]] = {k: {} for k in kinds}
        self.state: dict[str, WatchState] = {k: WatchState() for k in kinds}
        self.host = ""

    def freshness(self, *kinds: str) -> Freshness:
        """The worst freshness among `kinds`: fresh while every watch is connected."""
        now = time.monotonic()
        worst = Freshness(0.0, False, None, 0, True)
        for kind in kinds or self.kinds:
            s = self.state[kind]
            if s.connected and s.error is None:
                continue
            age = None if s.last_ok is None else now - s.last_ok
            f = Freshness(age, True, s.error, s.failures, True)
            if not worst.stale or (f.error and not worst.error) or (f.age or 1e9) > (worst.age or 0):
                worst = f
        return worst

    async def run(self) -> None:
        """Follow every kind until cancelled; never raises for the cluster's failures."""
        try:
            api = await self.kube.api_client(self.context)
        except ServiceError as exc:
            for kind in self.kinds:
                self._failed(kind, str(exc))
            raise
        self.host = api.configuration.host
        async with api:
            await asyncio.gather(*(self._follow(api, kind) for kind in self.kinds))

    async def _follow(self, api, kind: str) -> None:
        delay = 1.0
        state = self.state[kind]
        while True:
            try:
                rows, version = await self.kube.list_rows(api, kind, self.namespace)
                state.lists += 1
                self.rows[kind] = rows
                self._ok(kind)
                self.on_change(kind, None)
                delay = 1.0
                while True:  # a watch that ends cleanly goes on from where it was
                    version = await self._watch(api, kind, version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status == 410:  # Gone: our resourceVersion is too old; list again
                    log.info("watch of %s: 410 Gone, re-listing", kind)
                    continue
                if isinstance(exc, BrokenWatch) and state.failures == 0:
                    log.info("watch of %s broke (%s), re-listing", kind, exc)
                    state.connected = False
                    state.failures = 1  # the next failure in a row waits
                    continue
                self._failed(kind, str(api_error(exc.__cause__ or exc, RESOURCES[kind].label, self.host)))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)

    async def _watch(self, api, kind: str, version: str) -> str:
        """Watch `kind` from `version` until the server ends the watch; returns the last
        resourceVersion seen. Raises ApiException (410 included) or BrokenWatch."""
        from kubernetes_asyncio import watch

        call, args = list_call(api, RESOURCES[kind], self.namespace)
        parse = RESOURCES[kind].row
        rows = self.rows[kind]
        stream = watch.Watch(return_type="object")  # dicts: no model objects to build
        try:
            async with stream.stream(
                call, *args, resource_version=version, timeout_seconds=self.watch_seconds,
                allow_watch_bookmarks=True, _request_timeout=(self.kube.timeout, self.watch_seconds + 30),
            ) as events:  # fmt: skip
                async for event in events:
                    kind_of_event = event["type"]
                    raw = event["raw_object"]
                    version = str((raw.get("metadata") or {}).get("resourceVersion") or version)
                    if kind_of_event == "BOOKMARK":
                        continue
                    key = object_key(raw)
                    if kind_of_event == "DELETED":
                        rows.pop(key, None)
                    else:
                        rows[key] = parse(raw)
                    self.state[kind].events += 1
                    self._ok(kind)
                    self.on_change(kind, {key})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if getattr(exc, "status", None) is not None:
                raise
            raise BrokenWatch(f"{type(exc).__name__}: {exc}") from exc
        self._ok(kind)
        return version

    def _ok(self, kind: str) -> None:
        s = self.state[kind]
        was_failing = s.error is not None
        s.connected, s.error, s.failures, s.last_ok = True, None, 0, time.monotonic()
        if was_failing:
            self.on_change(kind, set())  # the panel should drop its failing mark

    def _failed(self, kind: str, error: str) -> None:
        s = self.state[kind]
        s.connected, s.error = False, error
        s.failures += 1
        self.on_change(kind, set())


class BrokenWatch(Exception):
    """The watch stream ended abruptly (connection lost, server gone)."""
