"""The Server saves tab (SavesPane) in a small host app at 80x24, on moto's S3 server: the
bucket's figures with their age, polling only while the tab is shown, a prefix listed a
page at a time, 'not configured', S3 down, and a key with escape sequences shown inert."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Footer, Static, TabbedContent, TabPane

from console.sandbox.s3 import S3Server
from screens.live_table import LiveTable
from screens.saves import SavesPane
from screens.saves_render import middle_cut, object_row, prefix_row, summary_lines
from screens.widgets import Panel
from services.saves import PrefixUsage, SaveObject, SavesService, saves_service
from tests.conftest import wait_until
from tests.helpers import text_of

ESCAPE_KEY = "servers/\x1b]0;pwned\x07\x1b[2J.tar.gz.enc"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    """180 world saves of 6 servers over 45 days, 130 exports, one key with escape sequences."""
    name = s3_server.create_bucket(f"saves-{uuid.uuid4().hex[:10]}")
    now = datetime.now(UTC) - timedelta(hours=1)
    items = [
        (f"servers/{n % 6:02d}-{'a' * 36}/world-{n:04d}.tar.gz.enc", b"w" * 300, now - timedelta(hours=n * 6))
        for n in range(180)
    ]
    items += [(f"exports/{n:03d}/export.tar.gz.enc", b"e" * 40, now - timedelta(hours=n)) for n in range(130)]
    s3_server.store(name, items)
    s3_server.client().put_object(Bucket=name, Key=ESCAPE_KEY, Body=b"x")
    return name


class Host(App):
    """The Backups area as far as the pane needs: a tab beside it, a footer."""

    def __init__(self, saves: SavesService | None, *, initial: str = "saves") -> None:
        super().__init__()
        self.saves, self.initial = saves, initial

    def compose(self) -> ComposeResult:
        with TabbedContent(initial=self.initial):
            with TabPane("Backups", id="backups"):
                yield Static("the catalogue")
            with TabPane("Server saves", id="saves"):
                yield SavesPane(self.saves, interval=60)
        yield Footer(compact=True)


def service_for(server: S3Server, bucket: str | None) -> SavesService:
    return saves_service(server.url, server.access_key, server.secret_key, bucket, use_ssl=False)


def cells(table: LiveTable, column: int) -> list[str]:
    return [Text(str(row[column])).plain if not isinstance(row[column], Text) else row[column].plain
            for row in table.shown.values()]  # fmt: skip


async def test_the_tab_shows_usage_the_newest_and_what_is_past_retention_at_80x24(s3_server, bucket):
    app = Host(service_for(s3_server, bucket))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SavesPane)
        await wait_until(pilot, lambda: pane.summary is not None)
        await pilot.pause()
        head = text_of(app.query_one("#saves-head"))
        assert f"s3://{bucket}/" in head and "311 objects" in head and "listed " in head
        # 45 days of saves every 6 h: those of the first 15 days (60 of them) are past 30.
        assert "past the 30-day retention: 60 objects" in head

        prefixes = app.query_one("#saves-prefixes", LiveTable)
        assert cells(prefixes, 0) == ["servers/", "exports/"] and cells(prefixes, 1) == ["181", "130"]
        recent = app.query_one("#saves-objects", LiveTable)
        assert recent.row_count == 20 and next(iter(recent.shown)) == ESCAPE_KEY
        # The key that would retitle the terminal and clear it is shown, not obeyed.
        shown_key = cells(recent, 2)[0]
        assert "\x1b" not in shown_key and "\\x1b]0;pwned\\x07" in shown_key
        assert all(len(key) <= 80 - 23 for key in cells(recent, 2))
        for widget in (*app.query(Panel), app.query_one("#saves-head")):
            region = widget.region
            assert region.width > 0 and region.right <= 80 and region.bottom <= 23, widget.id


async def test_a_hidden_tab_lists_nothing_until_shown(s3_server, bucket):
    app = Host(service_for(s3_server, bucket), initial="backups")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SavesPane)
        await pilot.pause(0.3)
        assert pane.poller is not None and pane.poller.paused and pane.poller.polls == 0
        app.query_one(TabbedContent).active = "saves"
        await wait_until(pilot, lambda: pane.summary is not None)
        app.query_one(TabbedContent).active = "backups"
        await wait_until(pilot, lambda: pane.poller.paused)


async def test_a_prefix_is_listed_a_page_at_a_time(s3_server, bucket):
    app = Host(service_for(s3_server, bucket))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SavesPane)
        await wait_until(pilot, lambda: pane.summary is not None)
        prefixes = app.query_one("#saves-prefixes", LiveTable)
        prefixes.focus()
        await pilot.press("down", "enter")  # exports/
        await wait_until(pilot, lambda: pane.listing is not None)
        objects = app.query_one("#saves-objects", LiveTable)
        assert pane.listing.prefix == "exports/" and objects.row_count == 100
        assert cells(objects, 2)[0] == "exports/000/export.tar.gz.enc"
        title = str(app.query_one("#saves-objects-panel", Panel).border_title)
        assert "objects 1 to 100" in title and "] next" in title
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: pane.listing.after is not None)
        assert objects.row_count == 30 and cells(objects, 2)[0] == "exports/100/export.tar.gz.enc"
        assert "objects 101 to 130" in str(app.query_one("#saves-objects-panel", Panel).border_title)
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: pane.listing.after is None)
        assert objects.row_count == 100
        await pilot.press("escape")
        assert pane.listing is None and objects.row_count == 20


async def test_a_refresh_puts_a_new_save_first_and_a_grown_prefix_higher(s3_server):
    bucket = s3_server.create_bucket(f"saves-{uuid.uuid4().hex[:10]}")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    s3_server.store(
        bucket, [(f"a/{n}.enc", b"a" * 100, hour_ago) for n in range(3)] + [("b/0.enc", b"b", hour_ago)]
    )
    app = Host(service_for(s3_server, bucket))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SavesPane)
        await wait_until(pilot, lambda: pane.summary is not None)
        prefixes, recent = (
            app.query_one("#saves-prefixes", LiveTable),
            app.query_one("#saves-objects", LiveTable),
        )
        assert cells(prefixes, 0) == ["a/", "b/"]
        prefixes.focus()
        await pilot.press("down")  # the operator's cursor on b/
        s3_server.store(bucket, [("b/new.enc", b"n" * 1000, None)])
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.summary.objects == 5)
        await pilot.pause()
        assert cells(prefixes, 0) == ["b/", "a/"] and prefixes.selected_key == "False:b/"
        assert next(iter(recent.shown)) == "b/new.enc"


async def test_not_configured_says_which_setting(s3_server):
    for saves, said in ((service_for(s3_server, None), "OPSCONSOLE_SAVES_BUCKET"), (None, "not configured")):
        app = Host(saves)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert said in text_of(app.query_one("#saves-head"))
            assert not any(panel.display for panel in app.query(Panel))


async def test_s3_down_is_said_on_the_tab(s3_server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = Host(saves_service(f"http://127.0.0.1:{port}", "k", "s", "game-saves", use_ssl=False))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SavesPane)
        await wait_until(pilot, lambda: pane.poller.failures > 0, timeout=20)
        await pilot.pause()
        head = text_of(app.query_one("#saves-head"))
        assert "cannot be listed" in head and f"127.0.0.1:{port} cannot be reached" in head
        assert all(panel.has_class("-failing") for panel in app.query(Panel))


# -- rows, as pure functions -------------------------------------------------------------


def test_a_long_key_keeps_its_start_and_its_file_name():
    key = "servers/2eea1c97-d835-4afb-a9fa-ed5d6bf94ba9/world-20261201-040000.tar.gz.enc"
    cut = middle_cut(key, 40)
    assert len(cut) == 40 and cut.startswith("servers/2eea") and cut.endswith("040000.tar.gz.enc")
    assert middle_cut("short", 40) == "short"


def test_rows_say_size_share_and_age_and_mark_what_is_past_retention():
    assert [Text(str(c)).plain if not isinstance(c, Text) else c.plain for c in
            prefix_row(PrefixUsage("servers/", 3106, 3 * 1024 * 1024), 4 * 1024 * 1024)] == [
        "servers/", "3,106", "3.0 MiB", "75%"]  # fmt: skip
    assert prefix_row(PrefixUsage("", 2, 10, loose=True), 100)[0].plain == "(top level)"
    cutoff = NOW - timedelta(days=30)
    old = object_row(SaveObject("servers/a/w.enc", 2048, NOW - timedelta(days=40)), cutoff, NOW)
    new = object_row(SaveObject("servers/a/x.enc", 10, NOW - timedelta(hours=3)), cutoff, NOW)
    assert (old[0].plain, old[1], old[0].style) == ("40d", "2.0 KiB", "yellow")
    assert (new[0].plain, new[1], new[0].style) == ("3h", "10 B", "")


def test_the_head_says_nothing_is_past_retention_when_nothing_is():
    from services.saves import SavesSummary

    summary = SavesSummary("game-saves", "", 1, 30, NOW, 3, 300, (), 0, (), 0, 0, ())
    text = summary_lines(summary, "5 s ago").plain
    assert text == "s3://game-saves/  3 objects · 300 B  listed 5 s ago\nnothing past the 30-day retention"
