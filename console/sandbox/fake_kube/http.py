"""The API server's HTTP side: bearer-token auth, list (paged, filtered, as JSON or as the
Table kubectl prints), watch (from a resourceVersion, 410 when compacted, bookmarks),
get, patch, the scale subresource and pod logs (tail and follow)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from console.sandbox.fake_kube import discovery, tables
from console.sandbox.fake_kube.controllers import Cluster
from console.sandbox.fake_kube.kinds import DEPLOYMENT, FLEET_LABEL, KINDS, POD, Kind
from console.sandbox.fake_kube.patch import apply_patch
from console.sandbox.fake_kube.store import DROP, END, Event, Key
from console.sandbox.fake_kube.wire import (
    TRUE,
    Failure,
    Predicate,
    check_replicas,
    conflict,
    not_found,
    selectors,
    status,
)


class KubeApi:
    """The routes of the fake API server over a Cluster; handlers run in the server's loop."""

    def __init__(self, cluster: Cluster, token: str):
        self.cluster = cluster
        self.token = token

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._guard)
        discovery.add_routes(app)
        add = app.router.add_route
        for kd in KINDS:
            base = (
                f"{kd.prefix}/namespaces/{{namespace}}/{kd.plural}"
                if kd.namespaced
                else f"{kd.prefix}/{kd.plural}"
            )
            add("GET", base, self._bind(self._collection, kd))
            if kd.namespaced:
                add("GET", f"{kd.prefix}/{kd.plural}", self._bind(self._collection, kd))
            item = f"{base}/{{name}}"
            add("GET", item, self._bind(self._read, kd))
            add("PATCH", item, self._bind(self._patch, kd))
            if kd.scalable:
                add("GET", f"{item}/scale", self._bind(self._scale_read, kd))
                add("PATCH", f"{item}/scale", self._bind(self._scale_patch, kd))
        add("GET", f"{POD.prefix}/namespaces/{{namespace}}/pods/{{name}}/log", self._pod_log)

    @staticmethod
    def _bind(handler: Callable, kd: Kind) -> Callable:
        async def bound(request: web.Request) -> web.StreamResponse:
            return await handler(request, kd)

        return bound

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise Failure(401, "Unauthorized", "Unauthorized")
            return await handler(request)
        except Failure as failure:
            return failure.response()
        except web.HTTPNotFound:
            return Failure(404, "NotFound", "the server could not find the requested resource").response()
        except web.HTTPMethodNotAllowed:
            message = "the server does not allow this method on the requested resource"
            return Failure(405, "MethodNotAllowed", message).response()

    # ---- reads ---------------------------------------------------------------------------

    def _lookup(self, request: web.Request, kd: Kind) -> tuple[Key, dict]:
        name = request.match_info["name"]
        key = (request.match_info.get("namespace", ""), name)
        obj = self.cluster.objects[kd.kind].get(key)
        if obj is None:
            raise not_found(kd, name)
        return key, obj

    async def _read(self, request: web.Request, kd: Kind) -> web.Response:
        key, _ = self._lookup(request, kd)
        raw = self.cluster.full(kd, self.cluster.raw[kd.kind][key])
        if tables.wanted(request):
            return _json(
                tables.table(kd, [json.loads(raw)], {"resourceVersion": str(self.cluster.rv)}, request)
            )
        return _raw_json(raw)

    async def _collection(self, request: web.Request, kd: Kind) -> web.StreamResponse:
        namespace = request.match_info.get("namespace", "")
        predicates = selectors(request.query)
        if request.query.get("watch", "").lower() in TRUE:
            return await self._watch(request, kd, namespace, predicates)
        return self._list(request, kd, namespace, predicates)

    def _list(
        self, request: web.Request, kd: Kind, namespace: str, predicates: list[Predicate]
    ) -> web.Response:
        query, cluster = request.query, self.cluster
        objects, raws = cluster.objects[kd.kind], cluster.raw[kd.kind]
        keys = sorted(k for k in objects if not namespace or k[0] == namespace)
        meta: dict[str, Any] = {"resourceVersion": str(cluster.rv)}
        token = query.get("continue", "")
        if token:
            try:
                start = tuple(json.loads(base64.urlsafe_b64decode(token))["start"])
            except (ValueError, KeyError, TypeError):
                raise Failure(400, "BadRequest", "continue key is not valid") from None
            keys = [k for k in keys if k > start]
        if predicates:
            keys = [k for k in keys if all(p(objects[k]) for p in predicates)]
        limit = query.get("limit", "")
        if limit.isdigit() and 0 < int(limit) < len(keys):
            rest = len(keys) - int(limit)
            keys = keys[: int(limit)]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"start": list(keys[-1])}).encode()
            ).decode()
            meta["remainingItemCount"] = rest
        if tables.wanted(request):
            return _json(
                tables.table(kd, [json.loads(cluster.full(kd, raws[k])) for k in keys], meta, request)
            )
        items = b",".join(raws[k] for k in keys)
        head = {"kind": f"{kd.kind}List", "apiVersion": kd.api_version, "metadata": meta}
        return _raw_json(
            json.dumps(head, separators=(",", ":")).encode()[:-1] + b',"items":[' + items + b"]}"
        )

    # ---- watch ---------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, kd: Kind, namespace: str, predicates: list[Predicate]
    ) -> web.StreamResponse:
        cluster, query = self.cluster, request.query
        since_text = query.get("resourceVersion", "")
        try:
            since = int(since_text) if since_text not in ("", "0") else None
            timeout = float(query.get("timeoutSeconds") or 0)
        except ValueError:
            raise Failure(
                400, "BadRequest", f"invalid resourceVersion or timeoutSeconds: {since_text!r}"
            ) from None
        bookmarks = query.get("allowWatchBookmarks", "").lower() in TRUE
        as_table = tables.wanted(request)

        def matches(obj: dict | None) -> bool:
            if obj is None or (namespace and obj["metadata"].get("namespace") != namespace):
                return False
            return all(p(obj) for p in predicates)

        def visible(event: Event) -> str | None:
            now = matches(event.obj)
            if event.type == "MODIFIED" and predicates:
                was = matches(event.prev)
                if now != was:
                    return "ADDED" if now else "DELETED"
            return event.type if now else None

        def line(kind: str, raw: bytes) -> bytes:
            obj = cluster.full(kd, raw)
            if as_table:
                obj = json.dumps(
                    tables.table(kd, [json.loads(obj)], {}, request), separators=(",", ":")
                ).encode()
            return b'{"type":"%s","object":%s}\n' % (kind.encode(), obj)

        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        if since is not None and since < cluster.floor[kd.kind]:
            gone = status(410, "Expired", f"too old resource version: {since} ({cluster.floor[kd.kind]})")
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            await response.write_eof()
            return response
        # The backlog and the subscription are taken with no await between them: nothing is missed.
        if since is None:
            objects, raws = cluster.objects[kd.kind], cluster.raw[kd.kind]
            backlog = [line("ADDED", raws[k]) for k in sorted(objects) if matches(objects[k])]
        else:
            backlog = [line(t, e.raw) for e in cluster.history[kd.kind] if e.rv > since and (t := visible(e))]
        queue: asyncio.Queue = asyncio.Queue()
        cluster.watchers[kd.kind].add(queue)
        cluster.streams.add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout > 0 else None
        try:
            for start in range(0, len(backlog), 200):
                await response.write(b"".join(backlog[start : start + 200]))
            while True:
                wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
                if wait <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        return response  # the client went away
                    continue
                items = [item]
                while not queue.empty():
                    items.append(queue.get_nowait())
                lines = []
                for entry in items:
                    if entry is DROP:
                        if request.transport:
                            request.transport.close()
                        return response
                    if entry is END:
                        deadline = loop.time()
                        break
                    if kind := visible(entry):
                        lines.append(line(kind, entry.raw))
                if lines:
                    await response.write(b"".join(lines))
            if bookmarks:
                mark = {
                    "kind": kd.kind,
                    "apiVersion": kd.api_version,
                    "metadata": {"resourceVersion": str(cluster.rv)},
                }
                await response.write(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client is gone
        finally:
            cluster.watchers[kd.kind].discard(queue)
            cluster.streams.discard(queue)
        return response

    # ---- writes --------------------------------------------------------------------------

    def _check_version(self, kd: Kind, old: dict, new: dict) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise conflict(kd, old["metadata"]["name"])

    async def _patch(self, request: web.Request, kd: Kind) -> web.Response:
        key, old = self._lookup(request, kd)
        cluster = self.cluster
        new = apply_patch(
            request.content_type, cluster.current(kd, key), await request.read(), builtin=kd.builtin
        )
        self._check_version(kd, old, new)
        if kd.scalable:
            check_replicas(
                kd.qualified, kd.group, kd.kind, key[1], (new.get("spec") or {}).get("replicas", 1)
            )
        cluster.replace(kd, old, new)
        return _raw_json(cluster.full(kd, cluster.raw[kd.kind][key]))

    def _scale(self, kd: Kind, obj: dict) -> dict:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        if kd is DEPLOYMENT:
            match = spec.get("selector", {}).get("matchLabels") or {"app": meta["name"]}
        else:
            match = {FLEET_LABEL: meta["name"]}
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": ",".join(f"{k}={v}" for k, v in match.items())},
        }  # fmt: skip

    async def _scale_read(self, request: web.Request, kd: Kind) -> web.Response:
        _, obj = self._lookup(request, kd)
        return web.json_response(self._scale(kd, obj))

    async def _scale_patch(self, request: web.Request, kd: Kind) -> web.Response:
        key, old = self._lookup(request, kd)
        scale = apply_patch(
            request.content_type, self._scale(kd, old), await request.read(), builtin=kd.builtin
        )
        self._check_version(kd, old, scale)
        replicas = check_replicas(
            "Scale.autoscaling", "autoscaling", "Scale", key[1], (scale.get("spec") or {}).get("replicas")
        )
        new = self.cluster.editable(kd, key)
        new["spec"]["replicas"] = replicas
        self.cluster.replace(kd, old, new)
        return web.json_response(self._scale(kd, self.cluster.objects[kd.kind][key]))

    # ---- logs ----------------------------------------------------------------------------

    async def _pod_log(self, request: web.Request) -> web.StreamResponse:
        key, pod = self._lookup(request, POD)
        query, cluster = request.query, self.cluster
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        container = query.get("container", "")
        if container and container not in names:
            raise Failure(400, "BadRequest", f"container {container} is not valid for pod {key[1]}")
        if not container and len(names) > 1:
            message = (
                f"a container name must be specified for pod {key[1]}, choose one of: [{' '.join(names)}]"
            )
            raise Failure(400, "BadRequest", message)
        lines = cluster.log_lines(key)
        tail = query.get("tailLines", "")
        if tail:
            if not tail.lstrip("-").isdigit():
                raise Failure(400, "BadRequest", f"tailLines {tail!r} is not an integer")
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        text = "".join(f"{line}\n" for line in lines).encode()
        if query.get("follow", "").lower() not in TRUE:
            return web.Response(body=text, content_type="text/plain")
        queue: asyncio.Queue = asyncio.Queue()
        cluster.logs.followers.setdefault(key, set()).add(queue)
        cluster.streams.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if text:
                await response.write(text)
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        return response
                    continue
                if item is DROP:
                    if request.transport:
                        request.transport.close()
                    return response
                if item is END:
                    break
                await response.write(f"{item}\n".encode())
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            cluster.logs.followers.get(key, set()).discard(queue)
            cluster.streams.discard(queue)
        return response


def _raw_json(payload: bytes, code: int = 200) -> web.Response:
    return web.Response(body=payload, status=code, content_type="application/json")


def _json(body: dict) -> web.Response:
    return _raw_json(json.dumps(body, separators=(",", ":")).encode())
