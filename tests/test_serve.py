"""`opsconsole serve --board`, run as it is run: without the token nothing is served and no
process starts (the page, its assets, the websocket, another site's page: 403); with it, a
tab's process starts with no secret in its environment and draws the board from the one data
process; a real browser (Debian's chromium, headless) loads the page and shows the board."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from console.board_app import FEED_TOKEN_ENV
from console.serve import TOKEN_ENV, TokenError, board_child_env, console_child_env, serve_token
from tests.conftest import SEEDED_TEMPLATE, _clone, as_runtime
from tests.test_trust import run

SECRETS = {
    "STRIPE_SECRET_KEY": "sk_test_served_board_0123456789",
    "S3_ACCESS_KEY": "served-board-access",
    "S3_SECRET_KEY": "served-board-s3-secret",
    "BACKUP_ENCRYPTION_KEY": "b" * 64,
    "PTERO_APP_KEY": "ptla_served_board_0123456789",
}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (its children, theirs, ...)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


@pytest.fixture(scope="module")
def served(pg_cluster, tmp_path_factory):
    """`opsconsole serve --board --port 0` on a seeded database, with secrets in its environment."""
    root = tmp_path_factory.mktemp("serve")
    clone = _clone(pg_cluster, SEEDED_TEMPLATE)
    dsn = as_runtime(next(clone))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSCONSOLE_", "DATABASE_URL"))}
    token = "served-board-token-" + os.urandom(8).hex()
    env.update(SECRETS, DATABASE_URL=dsn, OPSCONSOLE_STRIPE_API_BASE="http://127.0.0.1:9",
               XDG_CONFIG_HOME=str(root / "config"), XDG_STATE_HOME=str(root / "state"))  # fmt: skip
    env[TOKEN_ENV] = token
    log = (root / "serve.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "console", "serve", "--board", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:(\d+))/\?token=<OPSCONSOLE_SERVE_TOKEN>", line)
    assert match, f"no start line: {line!r}"  # its output is a pipe: the token is not printed
    try:
        yield SimpleNamespace(proc=proc, line=line, base=match[1], port=int(match[2]), token=token,
                              url=f"{match[1]}/?token={token}", dsn=dsn, log=root / "serve.log")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        next(clone, None)


async def test_without_the_token_nothing_is_served_and_no_process_starts(served):
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/static/js/textual.js", "/ws", "/?token=not-the-token", "/download/x"):
            async with http.get(served.base + path, allow_redirects=False) as reply:
                assert reply.status == 403, path
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{served.base}/ws?width=80&height=24")
        assert refused.value.status == 403
        # The token itself, from another site's page: refused too.
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{served.base}/ws?token={served.token}", origin="http://evil.example")
    assert descendants(served.proc.pid) == []
    logged = served.log.read_text()
    assert "refused GET /ws" in logged and served.token not in logged and "token=" not in logged


async def test_with_the_token_a_board_tab_starts_with_no_secret_and_reads_the_data_process(served):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(served.url, allow_redirects=False) as reply:
            assert reply.status == 303 and reply.headers["Location"] == "/"  # the token leaves the address
            assert "HttpOnly" in reply.headers["Set-Cookie"]
        async with http.get(served.base + "/") as reply:
            page = await reply.text()
        assert reply.status == 200 and f"ws://127.0.0.1:{served.port}/ws" in page
        assert served.token not in page and "googleapis" not in page
        ws = await http.ws_connect(f"{served.base}/ws?width=120&height=40")
        screen = b""
        deadline = time.monotonic() + 30
        while not all(word in screen for word in (b"ALERTS", b"ORDERS", b"CONSOLES", b"stuck")):
            assert time.monotonic() < deadline, screen[-400:]
            message = await ws.receive(timeout=deadline - time.monotonic())
            if message.type == aiohttp.WSMsgType.BINARY:
                screen += message.data
        tabs = descendants(served.proc.pid)
        assert tabs
        environs = [environ_of(pid) for pid in tabs]
        for environ in environs:
            assert not set(environ) & {*SECRETS, "DATABASE_URL", TOKEN_ENV}, sorted(environ)
            values = "\n".join(environ.values())
            assert not any(secret in values for secret in (*SECRETS.values(), served.token, served.dsn))
        feed = next(e["OPSCONSOLE_BOARD_FEED"] for e in environs if "OPSCONSOLE_BOARD_FEED" in e)
        assert feed.startswith("http://127.0.0.1:")
        async with http.get(feed) as reply:
            assert reply.status == 403  # the data process wants its own token
        feed_token = next(e[FEED_TOKEN_ENV] for e in environs if FEED_TOKEN_ENV in e)
        async with http.get(feed, headers={"Authorization": f"Bearer {feed_token}"}) as reply:
            tiles = (await reply.json())["tiles"]
        assert [t["id"] for t in tiles][:3] == ["alerts", "incidents", "orders"]
        assert next(t for t in tiles if t["id"] == "webhooks")["state"] in ("down", "reading")  # port 9
        await ws.close()
    deadline = time.monotonic() + 10
    while descendants(served.proc.pid):  # the tab's process ends with its tab
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


# -- a real browser ----------------------------------------------------------------------------------

DRAWN = "document.body && document.body.className"  # textual.js adds -first-byte once the app drew
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")  # fmt: skip


async def browser_screenshot(url: str, size: tuple[int, int] = (1280, 800), settle: float = 2.0,
                             timeout: float = 40.0) -> bytes:  # fmt: skip
    """Open `url` in headless chromium (a fresh profile), wait until the served terminal has
    drawn (`-first-byte` on the page) and `settle` seconds more, and return a PNG of the page."""
    profile = tempfile.mkdtemp(prefix="opsconsole-chromium-")
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
    browser = await asyncio.create_subprocess_exec(
        "chromium", *flags, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        port = None
        while line := (await asyncio.wait_for(browser.stderr.readline(), timeout)).decode(errors="replace"):
            if found := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                port = int(found[1])
                break
        assert port, "chromium did not start its DevTools endpoint"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as reply:
                page = next(t for t in await reply.json() if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as cdp:
                ids = iter(range(1, 1_000_000))

                async def call(method: str, **params):
                    sent = next(ids)
                    await cdp.send_json({"id": sent, "method": method, "params": params})
                    async for message in cdp:
                        data = json.loads(message.data)
                        if data.get("id") == sent:
                            return data.get("result", {})
                    raise AssertionError("chromium went away")

                await call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1],
                           deviceScaleFactor=1, mobile=False)  # fmt: skip
                await call("Page.navigate", url=url)
                deadline = time.monotonic() + timeout
                while True:
                    state = await call("Runtime.evaluate", expression=DRAWN)
                    if "-first-byte" in str(state.get("result", {}).get("value")):
                        break
                    assert time.monotonic() < deadline, f"the page never drew: {state}"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(settle)
                shot = await call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])
    finally:
        browser.terminate()
        try:
            await asyncio.wait_for(browser.wait(), 10)
        except TimeoutError:
            browser.kill()
            await browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, pixels) of an 8-bit RGB or RGBA PNG, without an image library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        header = body if kind == b"IHDR" else header
        if kind == b"IDAT":
            chunks.append(body)
        pos += 12 + size
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour = header[8], header[9]
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        prev = line
    pixels = [row[x : x + 3] for row in rows for x in range(0, stride, bpp)]
    return width, height, pixels


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (make test installs it)")
async def test_a_real_browser_shows_the_served_board(served, tmp_path):
    png = await browser_screenshot(served.url)
    (tmp_path / "board.png").write_bytes(png)
    width, height, pixels = png_pixels(png)
    assert (width, height) == (1280, 800)
    background = max(set(pixels[::97]), key=pixels[::97].count)
    drawn = sum(1 for p in pixels[::7] if p != background) / len(pixels[::7])
    assert drawn > 0.05, drawn  # tiles, borders, figures: not a blank or loading page
    reds = sum(1 for r, g, b in pixels[::7] if r > 150 and g < 110 and b < 130)
    assert reds > 50  # the seeded world's critical figures (stuck orders, alerts) in red
    assert descendants(served.proc.pid) or True  # the tab may already be gone with the browser


# -- the rules, without a server ---------------------------------------------------------------------


def test_the_token_is_new_each_start_unless_a_strong_one_is_given():
    assert serve_token({}) != serve_token({}) and len(serve_token({})) >= 32
    assert serve_token({TOKEN_ENV: "a-long-enough-token-1234"}) == "a-long-enough-token-1234"
    for weak in ("short", "with a space in it 12345"):
        with pytest.raises(TokenError):
            serve_token({TOKEN_ENV: weak})


def test_a_board_tab_keeps_only_locale_and_paths_and_a_console_tab_loses_the_token():
    environ = {**SECRETS, "PATH": "/usr/bin", "LANG": "C.UTF-8", "DATABASE_URL": "postgresql://x:pw@db/x",
               "KUBECONFIG": "/root/.kube/config", TOKEN_ENV: "t" * 20, "HOME": "/root"}  # fmt: skip
    assert board_child_env(environ) == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    console = console_child_env(environ, OPSCONSOLE_READ_ONLY="1")
    assert TOKEN_ENV not in console and console["DATABASE_URL"] and console["OPSCONSOLE_READ_ONLY"] == "1"


def test_a_token_is_never_printed_into_a_log():
    shown = run(["serve", "--board", "--port", "0"], {})  # the output is not a terminal
    assert shown.exit_code == 2 and TOKEN_ENV in shown.output


def test_the_whole_console_is_served_only_for_a_configured_operator():
    shown = run(["serve", "--port", "0"], {TOKEN_ENV: "a-long-enough-token-1234"})
    assert shown.exit_code == 2 and "is a viewer" in shown.output and "serve --board" in shown.output
