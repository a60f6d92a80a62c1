"""An aiohttp app on 127.0.0.1 in its own thread and event loop: the base of the sandbox's
fakes, usable from sync code (the demo, the CLI) and async tests alike."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class LoopbackServer:
    """Subclasses add routes in `routes(app)` and may open resources in `setup()`."""

    name = "loopback"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        # Every request as (method, path), in order: what a test compares with a preview.
        self.requests: list[tuple[str, str]] = []

    @web.middleware
    async def _log_request(self, request: web.Request, handler):
        self.requests.append((request.method, request.path))
        return await handler(request)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def setup(self) -> None:
        """Open what the handlers need (runs in the server's loop)."""

    async def teardown(self) -> None:
        """Close what setup() opened."""

    def start(self) -> str:
        """Start serving; returns the base URL (http://127.0.0.1:PORT). Idempotent."""
        if self._thread:
            return self.url
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            await self.setup()
            app = web.Application(middlewares=[self._log_request])
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self.url

    def stop(self) -> None:
        """Stop serving and close everything; idempotent."""
        if not self._thread or not self._loop:
            return

        async def shutdown() -> None:
            if self._runner:
                await self._runner.cleanup()
            await self.teardown()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
