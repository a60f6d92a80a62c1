"""The backups area as the on-call engineer uses it, on a real PostgreSQL and moto's S3
server: the list shows a backup made beforehand with its RPO, V verifies it, a damaged one
reads DAMAGED, K backs up through the confirmation with a progress bar, a drill's evidence
is shown, S3 going away is said and survived, read-only hides every action; and the pure
row and detail rendering."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from textual.widgets import ProgressBar
from textual.widgets._footer import FooterKey

from console.sandbox.s3 import S3Server
from screens.action_modal import ActionConfirmScreen
from screens.backups import BackupsScreen
from screens.backups_render import (
    about_rows,
    backup_row,
    checks_rows,
    drill_rows,
    list_title,
    rows_text,
    state_cell,
    status_text,
)
from screens.base import AreaScreen
from screens.live_table import LiveTable
from services.backup_actions import BACKUP_RUN
from services.backup_model import BackupEntry, BackupsStatus
from services.backup_run import DumpProgress, ProgressLine
from services.backups import BackupsService
from services.postgres import PostgresConfig, PostgresService
from services.storage import StorageService
from tests.conftest import as_runtime, wait_until
from tests.helpers import make_app, text_of

KEY = "00" * 16 + "11" * 16
NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket(f"backups-{uuid.uuid4().hex[:12]}")


def app_for(seeded_db: str, server: S3Server, bucket: str, **kw):
    """The console as the on-call engineer runs it: the runtime login, S3, the key."""
    env = {**server.env(bucket), "S3_USE_SSL": "false", "BACKUP_ENCRYPTION_KEY": KEY}
    return make_app(as_runtime(seeded_db), refresh=kw.pop("refresh", 1.0), OPSCONSOLE_RESTORE_DSN=seeded_db,
                    **env, **kw)  # fmt: skip


async def backup_beforehand(seeded_db: str, server: S3Server, bucket: str, operator: str = "bob") -> str:
    """A backup made before the console starts (as last night's cron would): its id."""
    env = server.env(bucket)
    postgres = PostgresService(PostgresConfig(dsn=as_runtime(seeded_db)))
    storage = StorageService(env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], bucket,
                             use_ssl=False)  # fmt: skip
    service = BackupsService(postgres, storage, dsn=as_runtime(seeded_db), encryption_key=KEY,
                             chunk_size=64 * 1024)  # fmt: skip
    try:
        return (await service.run(operator)).id
    finally:
        await postgres.close()


async def open_backups(pilot, app) -> BackupsScreen:
    await pilot.press("5")
    screen = app.screen
    assert isinstance(screen, BackupsScreen)
    await wait_until(pilot, lambda: screen.status is not None or screen.error is not None)
    return screen


def table(screen) -> LiveTable:
    return screen.query_one("#backups-table", LiveTable)


def row_text(screen, backup_id: str) -> str:
    return " ".join(str(cell) for cell in table(screen).shown[backup_id])


def detail_of(screen) -> str:
    return text_of(screen.query_one("#detail-about")) + text_of(screen.query_one("#detail-checks"))


def notified(app, words: str) -> bool:
    return any(words in str(n.title) or words in str(n.message) for n in app._notifications)


async def test_the_list_shows_a_backup_made_beforehand_with_the_rpo(seeded_db, s3_server, bucket):
    backup_id = await backup_beforehand(seeded_db, s3_server, bucket)
    app = app_for(seeded_db, s3_server, bucket)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_backups(pilot, app)
        assert list(table(screen).shown) == [backup_id]
        row = row_text(screen, backup_id)
        assert "unverified" in row and "opsconsole" in row and "bob" in row and "KiB" in row
        status = text_of(screen.query_one("#backups-status"))
        assert re.search(rf"RPO    ok: last good backup \d+s ago, {backup_id}\n", status), status
        assert "Drill  OVERDUE: never done (a restore drill is due monthly)" in status
        assert "· 1 ·" in str(screen.query_one("#list-panel").border_title)
        detail = detail_of(screen)
        assert backup_id in detail and "sha256" in detail and "pg_dump" in detail
        assert "tables" in detail and "never verified (V verifies)" in detail
        footer = {k.key_display for k in screen.query(FooterKey)}
        assert {"K", "V", "L", "O", "Y"} <= footer  # from the declarations


async def test_verify_from_the_screen_marks_it_verified(seeded_db, s3_server, bucket):
    backup_id = await backup_beforehand(seeded_db, s3_server, bucket)
    app = app_for(seeded_db, s3_server, bucket)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_backups(pilot, app)
        await pilot.press("V")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        assert backup_id in text_of(app.screen.query_one("#summary"))
        await pilot.press("y")
        await wait_until(pilot, lambda: notified(app, "Verify backup: ok"), timeout=20)
        await wait_until(pilot, lambda: "verified" in row_text(screen, backup_id).replace("unverified", ""))
        await wait_until(pilot, lambda: "sha256 matches the manifest" in detail_of(screen))


async def test_a_damaged_backup_reads_damaged(seeded_db, s3_server, bucket):
    backup_id = await backup_beforehand(seeded_db, s3_server, bucket)
    client = s3_server.client()
    key = next(
        o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith(".opsbak")
    )
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    app = app_for(seeded_db, s3_server, bucket)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_backups(pilot, app)
        await pilot.press("V")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: notified(app, "Verify backup: failed"), timeout=20)
        await wait_until(pilot, lambda: "DAMAGED" in row_text(screen, backup_id))
        detail = detail_of(screen)
        assert "DAMAGED" in detail and "chunk" in detail
        # A damaged backup is no good backup: the RPO is breached.
        status = text_of(screen.query_one("#backups-status"))
        assert "RPO    BREACHED: no good backup at all" in status


async def test_k_backs_up_through_the_confirmation_with_progress(seeded_db, s3_server, bucket, monkeypatch):
    first = await backup_beforehand(seeded_db, s3_server, bucket)
    seen: list[str] = []
    shown = BackupsScreen.on_area_screen_action_progressed

    def record(self, message):
        seen.append(message.line)
        shown(self, message)

    monkeypatch.setattr(BackupsScreen, "on_area_screen_action_progressed", record)
    app = app_for(seeded_db, s3_server, bucket)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_backups(pilot, app)
        assert table(screen).row_count == 1
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        calls = text_of(app.screen.query_one("#calls-text"))
        assert "pg_dump --format=custom" in calls and f"s3://{bucket}/" in calls
        await pilot.press("y")
        await wait_until(pilot, lambda: notified(app, "Back up the database: ok"), timeout=30)
        await wait_until(pilot, lambda: table(screen).row_count == 2)
        newest = next(iter(table(screen).shown))
        assert newest != first and "alice" in row_text(screen, newest)  # newest first, by its operator
        # The dump's progress reached the screen, with how far along it was (the last backup's
        # size is the estimate).
        assert "dumping" in seen
        assert any(isinstance(line, ProgressLine) and line.fraction is not None for line in seen), seen
        await wait_until(pilot, lambda: not screen.query_one("#progress").has_class("-running"))


async def test_progress_bar_follows_the_progress_lines(seeded_db, s3_server, bucket):
    app = app_for(seeded_db, s3_server, bucket)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_backups(pilot, app)
        box = screen.query_one("#progress")
        assert not box.display or not box.has_class("-running")
        line = ProgressLine.of(DumpProgress(45 * 2**20, 12 * 2**20, 8 * 2**20, 3.0, 100 * 2**20))
        screen.post_message(AreaScreen.ActionProgressed(BACKUP_RUN, line))
        await pilot.pause(0.2)
        bar = screen.query_one("#progress-bar", ProgressBar)
        assert box.has_class("-running") and box.region.height >= 2
        assert bar.total == 100 and bar.progress == 45
        said = text_of(screen.query_one("#progress-line"))
        assert "Back up the database: dumped 45.0 MiB (45%)" in said
        screen.post_message(BackupsScreen.ActionEnded(BACKUP_RUN))
        await pilot.pause(0.2)
        assert not box.has_class("-running") and box.region.height == 0


@pytest.mark.slow
async def test_a_drill_shows_its_evidence(seeded_db, s3_server, bucket):
    backup_id = await backup_beforehand(seeded_db, s3_server, bucket)
    app = app_for(seeded_db, s3_server, bucket)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_backups(pilot, app)
        await pilot.press("L")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: notified(app, "Restore drill: ok"), timeout=60)
        await wait_until(pilot, lambda: "drilled" in row_text(screen, backup_id))
        detail = detail_of(screen)
        assert "passed" in detail and "as in the manifest" in detail
        assert "checked by amcheck: ok" in detail and "SELECT COUNT(*) FROM users =" in detail
        assert "restore" in detail and "download" in detail  # durations
        status = text_of(screen.query_one("#backups-status"))
        assert re.search(rf"Drill  ok: passed \d+s ago on {backup_id}, next due in 29d", status), status


async def test_the_screen_survives_s3_going_away(seeded_db, bucket):
    server = S3Server()  # its own (moto's buckets are the process's): stopped and started again here
    server.start()
    try:
        backup_id = await backup_beforehand(seeded_db, server, bucket)
        app = app_for(seeded_db, server, bucket, refresh=0.5)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_backups(pilot, app)
            assert backup_id in table(screen).shown
            server.stop()
            await wait_until(pilot, lambda: screen.error is not None, timeout=15)
            status = text_of(screen.query_one("#backups-status"))
            assert "cannot be reached" in status and "RPO    unknown" in status
            assert backup_id in table(screen).shown  # the last list stays, its age shown
            await pilot.press("1")  # the console keeps working
            await pilot.press("5")
            server.start()
            await wait_until(pilot, lambda: screen.error is None, timeout=20)
            assert "RPO    ok: last good backup" in text_of(screen.query_one("#backups-status"))
    finally:
        server.stop()


async def test_without_s3_the_area_says_not_configured(seeded_runtime_db):
    app = make_app(seeded_runtime_db)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_backups(pilot, app)
        assert "S3 is not configured" in text_of(screen.query_one("#backups-status"))
        assert "RPO    unknown" not in text_of(screen.query_one("#backups-status"))


async def test_read_only_hides_and_blocks_every_backup_action(seeded_db, s3_server, bucket):
    await backup_beforehand(seeded_db, s3_server, bucket)
    app = app_for(seeded_db, s3_server, bucket)
    app.context = replace(app.context, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_backups(pilot, app)
        await wait_until(pilot, lambda: table(screen).row_count == 1)
        footer = {k.key_display for k in screen.query(FooterKey)}
        assert not {"K", "V", "L", "O", "Y"} & footer
        for key in "KVLOY":
            await pilot.press(key)
        await pilot.pause(0.3)
        assert app.screen is screen  # no confirmation opened
        assert screen.palette_commands() == []


async def test_every_backup_key_fits_the_footer_at_80x24(seeded_db, s3_server, bucket):
    app = app_for(seeded_db, s3_server, bucket, role="admin")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_backups(pilot, app)
        from tests.test_small_terminal import on_screen, screen_text

        footer = screen_text(app)[-1]
        for key, word in (("K", "Backup"), ("V", "Verify"), ("L", "Drill"), ("O", "Restore"), ("Y", "Prune")):
            assert f"{key} {word}" in footer, footer
        assert "? Help" in footer
        assert on_screen(screen.query_one("#list-panel")) and on_screen(screen.query_one("#detail-panel"))
        assert on_screen(screen.query_one("#backups-status"))


# -- pure rendering ---------------------------------------------------------------------


def entry(**kw) -> BackupEntry:
    values = dict(id="20250108T020000Z-abc123", kind="opsconsole", key="opsconsole/agis/x.opsbak",
                  finished_at=NOW - timedelta(hours=10), stored_bytes=3 * 2**20, database="agis",
                  operator="bob", plaintext_bytes=12 * 2**20, catalogued=True)  # fmt: skip
    return BackupEntry(**{**values, **kw})


def plain_text(cells) -> str:
    return " | ".join(str(c) for c in cells)


def test_row_shows_sizes_age_and_how_far_it_is_known_good():
    row = plain_text(backup_row(entry(), NOW))
    assert (
        row
        == "20250108T020000Z-abc123 | 01-08 02:00 10h | unverified | 3.0 MiB | 12.0 MiB | opsconsole | bob"
    )
    verified = entry(verified_at=NOW - timedelta(hours=2), verify={"ok": True})
    assert str(state_cell(verified, NOW)) == "verified 2h"
    drilled = entry(
        verified_at=NOW, verify={"ok": True}, drilled_at=NOW - timedelta(days=3), drill={"ok": True}
    )
    assert str(state_cell(drilled, NOW)) == "drilled 3d"
    damaged = entry(verified_at=NOW, verify={"ok": False, "problem": "chunk 3: tag mismatch"})
    assert str(state_cell(damaged, NOW)) == "DAMAGED" and "red" in str(state_cell(damaged, NOW).style)
    legacy = entry(id="agis_backup_20250101_020000.sql.gz", kind="legacy", plaintext_bytes=None,
                   catalogued=False, operator="", finished_at=NOW - timedelta(days=400))  # fmt: skip
    assert plain_text(backup_row(legacy, NOW)) == (
        "agis_backup_20250101_020000 | 2023-12-05 400d | unverified | 3.0 MiB | — | legacy | —"
    )
    away = entry(catalogued=False, plaintext_bytes=None)  # listed from the bucket, catalogue away
    assert str(state_cell(away, NOW)) == "unknown"


def test_a_backup_id_from_the_bucket_is_shown_inert():
    row = backup_row(entry(id="evil\x1b[2J[b]x", operator="\x07bob"), NOW)
    assert "\x1b" not in str(row[0]) and "\\x1b" in str(row[0]) and "[b]" in str(row[0])
    assert "\x07" not in str(row[-1])
    about = rows_text(about_rows(entry(id="evil\x1b[2J", manifest={"pg_dump_version": "\x1b]0;x\x07"}), NOW))
    assert "\x1b" not in about and "\x07" not in about


def test_status_lines_say_the_rpo_and_the_drill():
    good = entry(verify={"ok": True}, verified_at=NOW)
    ok = BackupsStatus((good,), NOW, good, None)
    text = status_text(ok, [])
    assert "RPO    ok: last good backup 10h ago, 20250108T020000Z-abc123" in text.plain
    assert "Drill  OVERDUE: never done (a restore drill is due monthly)" in text.plain
    assert list_title(ok) == "Backups, newest first · 1 · 3.0 MiB stored"
    old = entry(finished_at=NOW - timedelta(hours=30), drilled_at=NOW - timedelta(days=3), drill={"ok": True})
    late = status_text(BackupsStatus((old,), NOW, old, old, "Postgres at db:5432 refused"), ["no key"])
    rpo_line, drill_line = late.split()[:2]
    assert rpo_line.plain == "RPO    BREACHED: last good backup 1d ago (over 24 h), 20250108T020000Z-abc123"
    assert any("red" in str(span.style) for span in rpo_line.spans)  # red past 24 h
    assert drill_line.plain == "Drill  ok: passed 3d ago on 20250108T020000Z-abc123, next due in 27d"
    assert "catalogue unreadable: Postgres at db:5432 refused" in late.plain
    assert "a backup cannot run: no key" in late.plain
    overdue = entry(drilled_at=NOW - timedelta(days=31), drill={"ok": True})
    said = status_text(BackupsStatus((overdue,), NOW, overdue, overdue)).plain
    assert "Drill  OVERDUE: last passed 31d ago (monthly), on 20250108T020000Z-abc123" in said
    assert "RPO    BREACHED: no good backup at all" in status_text(BackupsStatus((), NOW, None, None)).plain


def test_detail_shows_manifest_verify_and_drill_evidence():
    manifest = {"plaintext_bytes": 12 * 2**20, "compressed_bytes": 3 * 2**20, "stored_bytes": 3 * 2**20 + 100,
                "plaintext_sha256": "ab" * 32, "pg_dump_version": "16.4",
                "server_version": "16.4 (Debian 16.4-1)",
                "tables": {"public.users": 20, "public.orders": 80}, "audit_head": "cd" * 32, "chunks": 3,
                "chunk_size": 4 * 2**20, "seconds": 1.5, "key_id": "ee" * 8}  # fmt: skip
    drill = {"ok": False, "database": "opsconsole_drill_x", "verify": {"ok": True},
             "evidence": {"tables": {"public.users": {"expected": 20, "found": 20},
                                     "public.orders": {"expected": 80, "found": 79}},
                          "mismatched": ["public.orders"], "indexes_checked": 14, "index_failures": [],
                          "amcheck": "ok", "smoke_query": "SELECT COUNT(*) FROM users", "smoke": 20},
             "seconds": {"download": 0.4, "restore": 2.25, "evidence": 0.3}}  # fmt: skip
    e = entry(manifest=manifest, verified_at=NOW - timedelta(hours=1),
              verify={"ok": True, "chunks": 3, "plaintext_bytes": 12 * 2**20, "seconds": 0.2},
              drilled_at=NOW - timedelta(minutes=30), drill=drill)  # fmt: skip
    about = rows_text(about_rows(e, NOW, "backups"))
    assert "object     s3://backups/opsconsole/agis/x.opsbak" in about
    assert "sizes      12.0 MiB dumped → 3.0 MiB stored (4.0x)" in about
    assert "chunks     3 of ≤ 4.0 MiB, 3.0 MiB after zstd" in about
    assert "sha256     abababababababab… (plaintext)" in about
    assert "versions   pg_dump 16.4 · server 16.4\n" in about and "2 tables, 100 rows" in about
    assert "audit head cdcdcdcdcdcdcdcd" in about
    checks = rows_text(checks_rows(e, NOW))
    assert "Verify     ok 2025-01-08 11:00 UTC (1h ago)" in checks and "sha256 matches" in checks
    assert "Drill      FAILED 2025-01-08 11:30 UTC (30m ago)\ninto       opsconsole_drill_x" in checks
    assert "tables     1 of 2 as in the manifest (99 rows)" in checks
    assert "           public.orders: expected 80, found 79" in checks
    assert "indexes    14 checked by amcheck: ok" in checks
    assert "smoke      SELECT COUNT(*) FROM users = 20" in checks
    assert "took       download 0.4 s · restore 2.2 s · evidence 0.3 s" in checks


def test_a_drill_of_a_damaged_backup_says_nothing_was_restored():
    drill = {"ok": False, "database": "d", "verify": {"ok": False, "problem": "chunk 2 fails its tag"},
             "evidence": None, "seconds": {"download": 0.1}}  # fmt: skip
    said = rows_text(drill_rows(entry(drilled_at=NOW, drill=drill), NOW))
    assert "damaged, nothing restored: chunk 2 fails its tag" in said


def test_a_drill_counts_as_a_verification():
    drill = {"ok": True, "database": "d", "verify": {"ok": True}, "evidence": None}
    said = rows_text(checks_rows(entry(drilled_at=NOW - timedelta(hours=1), drill=drill), NOW))
    assert "Verify     ok 2025-01-08 11:00 UTC (1h ago)\n" in said
    assert "\n           every chunk and the sha256, by the restore drill" in said


def test_legacy_detail_explains_what_it_is():
    legacy = entry(id="agis_backup_20250101_020000.sql.gz", kind="legacy", catalogued=False, manifest=None)
    text = rows_text(about_rows(legacy, NOW)) + rows_text(checks_rows(legacy, NOW))
    assert "backup     agis_backup_20250101_020000.sql.gz" in text  # the whole name, as commands take it
    assert "pg_dump | gzip" in text and "psql" in text and "V verifies" not in text and "L drills" not in text


async def test_r_on_the_server_saves_tab_lists_the_bucket_again(seeded_db, s3_server, bucket):
    from screens.saves import SavesPane

    saves = s3_server.create_bucket(f"saves-{uuid.uuid4().hex[:8]}")
    s3_server.client().put_object(Bucket=saves, Key="servers/a/world.tar.gz.enc", Body=b"x" * 10)
    # A slow poll: only `r` can make the new save show within the test.
    app = app_for(seeded_db, s3_server, bucket, OPSCONSOLE_SAVES_BUCKET=saves, refresh=300.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_backups(pilot, app)
        await pilot.press("s")
        pane = app.screen.query_one("#saves-pane", SavesPane)
        await wait_until(pilot, lambda: pane.summary is not None and pane.summary.objects == 1)
        s3_server.client().put_object(Bucket=saves, Key="servers/b/world.tar.gz.enc", Body=b"y" * 10)
        from textual.widgets import Tabs

        app.screen.query_one(Tabs).focus()  # the tab bar, not the pane, has the focus
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.summary.objects == 2)
