"""FakeKube: the fake API server on 127.0.0.1 over TLS (its own CA, written into the
kubeconfig it hands out), in its own thread, with the control API the sandbox and the tests
drive it by: apply, get, crashloop, log, compact, outage/restore, churn, the demo's story."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from console.sandbox.fake_kube import scenario
from console.sandbox.fake_kube.controllers import Cluster
from console.sandbox.fake_kube.http import KubeApi
from console.sandbox.fake_kube.kinds import kind_of
from console.sandbox.fake_kube.store import DROP
from console.sandbox.fake_kube.tls import Certificates, make_certificates
from console.sandbox.loopback import LoopbackServer


class FakeKube(LoopbackServer):
    """Kubernetes for the sandbox. Handlers and the control API all change the cluster in the
    server's loop; the control API may be called from any thread."""

    name = "fake-kube"

    def __init__(self, token: str | None = None, *, seed: int | None = 7):
        super().__init__()
        self.token = token or secrets.token_urlsafe(24)
        self.rng = random.Random(seed)
        self.cluster = Cluster(self.rng)
        self.api = KubeApi(self.cluster, self.token)
        self.certificates: Certificates = make_certificates()
        self._ssl = self.certificates.server_context()
        self._churn = scenario.Churn(self.cluster)
        self._tasks: dict[str, asyncio.Task] = {}
        self._port = 0

    @property
    def churned(self) -> int:
        """MODIFIED events emitted by churn() so far."""
        return self._churn.count

    @property
    def resource_version(self) -> int:
        return self.cluster.rv

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM) a client must trust to talk to this server."""
        return self.certificates.ca_pem

    def ssl_context(self):
        """A client SSLContext trusting this server's CA (for calls made without the kubeconfig)."""
        return self.certificates.client_context()

    def routes(self, app: web.Application) -> None:
        self.api.routes(app)

    # ---- threading -----------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30) -> Any:
        """Run fn in the server's loop (directly when not serving or already there)."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return fn(*args)

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def _await(self, coro: Any, timeout: float = 30) -> Any:
        assert self._loop is not None, "start the fake first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> str:
        """Start serving over TLS; returns the base URL (https://127.0.0.1:PORT). Idempotent."""
        if self._thread:
            return self.url
        url = super().start()
        self._port = int(url.rsplit(":", 1)[1])
        # The base class listens in plain HTTP; TLS takes the same port over before anyone knows it.
        self._await(self._listen())
        self.url = f"https://127.0.0.1:{self._port}"
        return self.url

    async def _listen(self) -> None:
        assert self._runner is not None
        for site in list(self._runner.sites):
            await site.stop()
        await web.TCPSite(
            self._runner, "127.0.0.1", self._port, ssl_context=self._ssl, reuse_address=True
        ).start()

    def stop(self) -> None:
        if self._thread and self._loop and self._loop.is_running():
            self._call(self._quiesce)
        super().stop()

    def _quiesce(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self.cluster.end_streams(DROP)

    # ---- control API ---------------------------------------------------------------------

    def apply(self, obj: dict) -> dict:
        """Add or replace an object (its kind from obj["kind"]); returns what is stored, as GET shows it."""
        kd = kind_of(obj["kind"])
        obj = copy.deepcopy(obj)

        def run() -> dict:
            stored = self.cluster.apply(kd, obj)
            return self.cluster.current(
                kd, self.cluster.key(kd, stored["metadata"].get("namespace"), stored["metadata"]["name"])
            )

        return self._call(run)

    def apply_all(self, objs: Iterable[dict]) -> None:
        """apply() for many objects in one trip to the server's loop."""
        items = [(kind_of(o["kind"]), copy.deepcopy(o)) for o in objs]
        self._call(lambda: [self.cluster.apply(kd, o) for kd, o in items])

    def delete(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """Delete an object (with what a controller would do next); returns it, or None if absent."""
        kd = kind_of(kind)

        def run() -> dict | None:
            key = self.cluster.key(kd, namespace, name)
            if key not in self.cluster.objects[kd.kind]:
                return None
            return self.cluster.public(kd, self.cluster.delete(kd, key))

        return self._call(run)

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """A copy of the object as GET shows it, or None."""
        kd = kind_of(kind)

        def run() -> dict | None:
            raw = self.cluster.raw[kd.kind].get(self.cluster.key(kd, namespace, name))
            return None if raw is None else json.loads(self.cluster.full(kd, raw))

        return self._call(run)

    def objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Copies of every object of a kind (in one namespace if given), sorted by namespace/name."""
        kd = kind_of(kind)

        def run() -> list[dict]:
            raws = self.cluster.raw[kd.kind]
            keys = sorted(k for k in raws if namespace is None or k[0] == namespace)
            return [json.loads(self.cluster.full(kd, raws[k])) for k in keys]

        return self._call(run)

    def crashloop(self, namespace: str, pod_name: str) -> None:
        """The pod's containers crash: waiting CrashLoopBackOff, not ready, restartCount + 1."""
        self._call(self.cluster.crashloop, (namespace, pod_name))

    def log(self, namespace: str, pod: str, line: str) -> None:
        """Append a line to the pod's log (and to every follow of it); raises KeyError for no such pod."""
        self._call(self.cluster.append_log, (namespace, pod), line)

    def compact(self) -> int:
        """Forget history: a watch from any older resourceVersion gets 410. Returns the current one."""
        return self._call(self.cluster.compact)

    def drop_watches(self) -> int:
        """Cut every open watch and log follow mid-stream; returns how many."""
        return self._call(self.cluster.end_streams, DROP)

    def outage(self) -> None:
        """Stop listening (connections are refused) and cut every open connection."""

        async def down() -> None:
            assert self._runner is not None
            for site in list(self._runner.sites):
                await site.stop()
            self.cluster.end_streams(DROP)
            server = self._runner.server
            for connection in server.connections if server else []:
                connection.force_close()

        self._await(down())

    def restore(self) -> None:
        """Listen again (over TLS, with the same certificate) on the same port after outage()."""

        async def up() -> None:
            assert self._runner is not None
            if not self._runner.sites:
                await self._listen()

        self._await(up())

    def kubeconfig(self, path: str | Path, namespace: str = "production") -> Path:
        """Write a kubeconfig for this server (its CA as certificate-authority-data, a bearer
        token), as a real cluster's; returns its path. Contexts fake-production and fake-staging;
        the current one is fake-<namespace>."""
        if not self.url:
            raise RuntimeError("start the fake before writing its kubeconfig")
        namespaces = ["production", "staging"] + (
            [namespace] if namespace not in ("production", "staging") else []
        )
        cluster = {"server": self.url, "certificate-authority-data": base64.b64encode(self.ca_pem).decode()}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake-admin", "user": {"token": self.token}}],
            "contexts": [
                {"name": f"fake-{ns}", "context": {"cluster": "fake", "user": "fake-admin", "namespace": ns}}
                for ns in namespaces
            ],
            "current-context": f"fake-{namespace}",
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    # ---- background stories --------------------------------------------------------------

    def churn(self, events_per_second: float) -> None:
        """Emit MODIFIED events on random pods and game servers at that rate until stop_churn()."""
        self._start_task("churn", lambda: self._churn.run(events_per_second))

    def stop_churn(self) -> None:
        self._stop_task("churn")

    def start_scenario(self, speed: float = 1.0) -> None:
        """The demo's story, `speed` times faster than real time: bot pods crash-loop, game
        servers get allocated, the fleet autoscaler scales up, finished ones shut down."""
        self._start_task("scenario", lambda: scenario.story(self.cluster, speed))

    def stop_scenario(self) -> None:
        self._stop_task("scenario")

    def _start_task(self, name: str, make: Callable[[], Any]) -> None:
        def run() -> None:
            if name not in self._tasks or self._tasks[name].done():
                self._tasks[name] = asyncio.get_running_loop().create_task(make())

        if self._loop is None or not self._loop.is_running():
            raise RuntimeError("start the fake first")
        self._call(run)

    def _stop_task(self, name: str) -> None:
        def run() -> None:
            task = self._tasks.pop(name, None)
            if task:
                task.cancel()

        self._call(run)
