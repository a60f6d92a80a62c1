"""`opsconsole serve`: the board (or, for a configured operator, the whole console) in a browser
through textual-serve, which has no authentication and starts a process per tab. So: a token
is checked before anything runs (the page, its assets and the websocket; 403 otherwise),
the tabs' processes get an environment holding no secret, and one data process (this one)
polls the backends while the board tabs read its snapshot over loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shlex
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from console.board_app import FEED_ENV, FEED_TOKEN_ENV

if TYPE_CHECKING:
    from asyncio.subprocess import Process

    from services.board import BoardFeed

TOKEN_ENV = "OPSCONSOLE_SERVE_TOKEN"  # the token to use instead of a new one each start
MIN_TOKEN = 16
COOKIE = "opsconsole_serve"
# All a board tab's process keeps of this environment: nothing that names a backend or a secret.
BOARD_ENV_KEEP = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
                  "PYTHONPATH", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")  # fmt: skip
# What the serving terminal sees of textual-serve's stream (the children's own words).
TERMINAL_KEEP = ("TEXTUAL", "TERM_PROGRAM", "COLUMNS", "ROWS")
FONT_LINK = re.compile(r'\s*<link\s+rel="stylesheet"\s+href="https://fonts\.googleapis\.com[^>]*>', re.S)

log = logging.getLogger("opsconsole.serve")


class TokenError(ValueError):
    """The configured token is too weak to guard a console."""


def serve_token(environ: dict[str, str] | None = None) -> str:
    """OPSCONSOLE_SERVE_TOKEN when set (at least 16 characters), else a new random one."""
    given = (environ if environ is not None else os.environ).get(TOKEN_ENV, "")
    if not given:
        return secrets.token_urlsafe(24)
    if len(given) < MIN_TOKEN or not given.isprintable() or any(c.isspace() for c in given):
        raise TokenError(f"{TOKEN_ENV} must be at least {MIN_TOKEN} printable characters, no spaces")
    return given


def board_child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A board tab's environment: locale and paths (serve_async adds where its data process is)."""
    source = environ if environ is not None else os.environ
    return {k: source[k] for k in BOARD_ENV_KEEP if k in source}


def console_child_env(environ: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A served console's environment: this one (it needs its backends) less the serve token."""
    source = environ if environ is not None else os.environ
    dropped = (TOKEN_ENV, FEED_ENV, FEED_TOKEN_ENV)
    return {**{k: v for k, v in source.items() if k not in dropped}, **extra}


class GuardedAppService(AppService):
    """textual-serve's process for one tab, started with our environment and nothing else."""

    def __init__(self, *args: Any, child_env: dict[str, str], on_spawn: Callable[[Process], None],
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.child_env = child_env
        self.on_spawn = on_spawn

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        env = super()._build_environment(width=width, height=height)
        terminal = {k: v for k, v in env.items() if k.startswith(TERMINAL_KEEP)}
        return {**self.child_env, **terminal}

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        process = await super()._open_app_process(width, height)
        self.on_spawn(process)
        return process


class GuardedServer(Server):
    """textual-serve's server, every route behind the token (a ?token= on the page sets an
    HttpOnly cookie and redirects to a URL without it), at most `max_sessions` tabs."""

    def __init__(self, command: str, *, token: str, child_env: dict[str, str], title: str,
                 max_sessions: int = 32) -> None:  # fmt: skip
        super().__init__(command, title=title)
        self._token = token
        self._cookie = hmac.new(token.encode(), b"opsconsole serve cookie", hashlib.sha256).hexdigest()
        self.child_env = child_env
        self.max_sessions = max_sessions
        self.processes: list[Process] = []  # every tab process started, for the tests and the stop
        self.refused = 0
        self._sockets: set[web.WebSocketResponse] = set()

    # -- the guard ------------------------------------------------------------------------------

    def allowed(self, request: web.Request) -> bool:
        given = request.query.get("token", "")
        if given and hmac.compare_digest(given.encode(), self._token.encode()):
            return True
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(), self._token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self._cookie.encode())

    @web.middleware
    async def guard(self, request: web.Request, handler):
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:  # another site's page opening our socket
            return self._refuse(request, "from another origin")
        if not self.allowed(request):
            return self._refuse(request, "without the token")
        if "token" in request.query:  # once the cookie is set, the address bar loses the token
            rest = [(k, v) for k, v in request.query.items() if k != "token"]
            where = request.path + (f"?{urlencode(rest)}" if rest else "")
            reply = web.Response(status=303, headers={"Location": where})
            reply.set_cookie(COOKIE, self._cookie, httponly=True, samesite="Strict", path="/")
            reply.headers["Cache-Control"] = "no-store"
            reply.headers["Referrer-Policy"] = "no-referrer"
            return reply
        return await handler(request)

    def _refuse(self, request: web.Request, why: str) -> web.Response:
        self.refused += 1
        log.warning("refused %s %s from %s %s", request.method, request.path, request.remote, why)
        return web.Response(status=403, text="403: this board needs the token `opsconsole serve` printed\n")

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.guard)
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve's banner would name the command; our one start line is enough."""

    # -- the page and the tabs -------------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> web.Response:
        """The page, pointing its websocket at the address the browser used (not the bind
        address), and without the web font from a third party."""
        scheme = "wss" if request.secure else "ws"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{scheme}://{request.host}/ws",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }
        html = FONT_LINK.sub("", aiohttp_jinja2.render_string("app_index.html", request, context))
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return web.Response(text=html, content_type="text/html", headers=headers)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's websocket handler with our process (its environment), a cap on tabs."""
        if len(self._sockets) >= self.max_sessions:
            raise web.HTTPServiceUnavailable(text=f"at most {self.max_sessions} sessions at once\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: AppService | None = None
        self._sockets.add(websocket)
        try:
            await websocket.prepare(request)
            service = GuardedAppService(
                self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                close=websocket.close, download_manager=self.download_manager, debug=False,
                child_env=self.child_env, on_spawn=self.processes.append,
            )  # fmt: skip
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as exc:  # one tab's trouble is logged, never the server's end
            log.warning("a session ended: %s", type(exc).__name__)
        finally:
            self._sockets.discard(websocket)
            if service is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(service.stop(), 5)
        return websocket

    async def close_sessions(self) -> None:
        """End every tab (its process is told to quit) and kill what did not."""
        for websocket in list(self._sockets):
            with contextlib.suppress(Exception):
                await websocket.close()
        await asyncio.sleep(0)
        for process in self.processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()


# -- the data process -------------------------------------------------------------------------------


def feed_app(feed: BoardFeed, token: str) -> web.Application:
    """GET /snapshot with `Authorization: Bearer <token>`: the board's snapshot as JSON."""
    expected = f"Bearer {token}".encode()

    async def snapshot(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
            return web.Response(status=403)
        return web.json_response(feed.snapshot().as_json(), dumps=lambda d: json.dumps(d, default=str))

    app = web.Application()
    app.router.add_get("/snapshot", snapshot)
    return app


def _port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the listening socket here; port 0 picks one
    assert server is not None
    return server.sockets[0].getsockname()[1]


def shown_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


async def serve_async(
    command: str,
    child_env: dict[str, str],
    *,
    token: str,
    host: str,
    port: int,
    title: str,
    max_sessions: int,
    feed: BoardFeed | None = None,
    started: Callable[[str, GuardedServer], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM). With a `feed`, it is polled here and
    offered on a loopback port to the board tabs (child_env gets its URL and token)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    feed_task = None
    server = None
    try:
        if feed is not None:
            feed_token = secrets.token_urlsafe(24)
            runner = web.AppRunner(feed_app(feed, feed_token), access_log=None)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            child_env = {**child_env, FEED_ENV: f"http://127.0.0.1:{_port(site)}/snapshot",
                         FEED_TOKEN_ENV: feed_token}  # fmt: skip
            feed_task = asyncio.create_task(feed.run())
        server = GuardedServer(command, token=token, child_env=child_env, title=title,
                               max_sessions=max_sessions)  # fmt: skip
        runner = web.AppRunner(await server._make_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, host, port)
        await site.start()
        url = f"http://{shown_host(host)}:{_port(site)}/?token={token}"
        if started is not None:
            started(url, server)
        await stop.wait()
    finally:
        if server is not None:
            await server.close_sessions()
        for runner in reversed(runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        if feed_task is not None:
            feed_task.cancel()
            with contextlib.suppress(BaseException):
                await feed_task


def board_command() -> str:
    return shlex.join([sys.executable, "-m", "console.board_app"])


def console_command() -> str:
    return shlex.join([sys.executable, "-m", "console.serve"])


def served_console() -> None:
    """A served tab of the whole console: the TUI as `opsconsole` opens it, its keys and screen
    over textual-serve's pipes instead of a terminal."""
    from console.app import OpsConsole
    from console.settings import ConfigError, load_settings
    from console.wiring import build_services
    from screens.base import ShellContext
    from services.text import mask_logs

    try:
        settings = load_settings().resolved()
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        sys.exit(2)
    mask_logs(*settings.urls())
    context = ShellContext(environment=settings.environment_name, colour=settings.environment_colour,
                           operator=settings.operator, role=settings.role, read_only=settings.read_only,
                           refresh=settings.refresh_for)  # fmt: skip
    OpsConsole(build_services(settings), context, health_interval=settings.refresh_for("health"),
               keymap=settings.keymap).run()  # fmt: skip


if __name__ == "__main__":
    served_console()
