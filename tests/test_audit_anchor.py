"""`audit verify` against a chain head anchored outside the table: a cut tail, a truncation
and an edit whose whole chain was recomputed (each done as a superuser, behind the
triggers' back) are reported broken, naming the anchored row; an intact log is intact."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from services.audit import AuditService
from services.audit_anchor import AnchorStore, Head
from services.postgres import PostgresConfig, PostgresService

# Recompute every row's prev_hash and hash in id order, as someone who can run the
# chain's own function would after an edit: the plain chain check then passes.
RECOMPUTE_CHAIN = """
DO $$
DECLARE
    r ops.audit_log;
    prev text := '';
BEGIN
    FOR r IN SELECT * FROM ops.audit_log ORDER BY id LOOP
        r.prev_hash := prev;
        UPDATE ops.audit_log SET prev_hash = prev, hash = ops.audit_row_hash(prev, r) WHERE id = r.id
            RETURNING hash INTO prev;
    END LOOP;
END
$$;
"""


def audit_service(dsn: str, anchors: Path) -> AuditService:
    return AuditService(PostgresService(PostgresConfig(dsn=dsn)), anchors)


async def write_rows(audit: AuditService, n: int) -> list[int]:
    return [
        await audit.record(operator="alice", role="oncall", action="node_disable",
                           target=f"node-{i}", phase="intent", detail={"i": i})
        for i in range(n)
    ]  # fmt: skip


async def as_superuser(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def written(seeded_db, seeded_runtime_db, tmp_path):
    """Six rows written by a console running as the runtime role, anchored in a file."""
    audit = audit_service(seeded_runtime_db, tmp_path / "anchors.jsonl")
    ids = await write_rows(audit, 6)
    yield audit, ids
    await audit.postgres.close()


async def test_an_intact_log_with_anchors_is_intact_and_says_what_it_checked(written):
    audit, ids = written
    report = await audit.verify()
    assert report.ok and report.rows == 6
    assert report.anchors == 6 and report.newest_anchor == ids[-1] and report.tail_checked
    assert report.head is not None and report.head.row_id == ids[-1]
    # The head it prints checks out next time, and still does after more rows.
    await write_rows(audit, 2)
    again = await audit.verify(head=report.head)
    assert again.ok and again.head_checked and again.rows == 8


async def test_deleted_tail_rows_are_reported_naming_the_first_anchored_row(written, seeded_db, tmp_path):
    audit, ids = written
    await as_superuser(
        seeded_db,
        "ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_update",
        f"DELETE FROM ops.audit_log WHERE id >= {ids[4]}",
    )
    report = await audit.verify()
    assert not report.ok and report.broken_id == ids[4]
    assert "gone" in report.reason and "deleted or the log truncated" in report.reason
    # Without the anchors (another machine, or today's verify) the cut is invisible.
    blind = await AuditService(audit.postgres, AnchorStore(tmp_path / "other-machine.jsonl")).verify()
    assert blind.ok and not blind.tail_checked


async def test_a_truncated_log_is_reported_even_after_new_rows_are_written(written, seeded_db, tmp_path):
    audit, ids = written
    await as_superuser(
        seeded_db,
        "ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_truncate",
        "TRUNCATE ops.audit_log",
    )
    report = await audit.verify()
    assert not report.ok and report.broken_id == ids[0] and "gone" in report.reason
    fresh = await write_rows(AuditService(audit.postgres, AnchorStore(tmp_path / "other-machine.jsonl")), 3)
    assert fresh[0] > ids[-1]
    assert (await audit.verify()).broken_id == ids[0]


async def test_a_truncation_that_restarts_the_ids_is_reported_as_rows_rewritten(written, seeded_db, tmp_path):
    audit, ids = written
    await as_superuser(
        seeded_db,
        "ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_truncate",
        "TRUNCATE ops.audit_log RESTART IDENTITY",
    )
    forged = audit_service(seeded_db, tmp_path / "other-machine.jsonl")
    assert await write_rows(forged, 6) == ids  # the same ids, other rows
    await forged.postgres.close()
    report = await audit.verify()
    assert not report.ok and report.broken_id == ids[0] and "rewritten" in report.reason


async def test_an_edit_whose_chain_was_recomputed_is_reported_at_the_edited_row(written, seeded_db, tmp_path):
    audit, ids = written
    await as_superuser(
        seeded_db,
        "ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_update",
        f"UPDATE ops.audit_log SET operator = 'mallory' WHERE id = {ids[2]}",
        RECOMPUTE_CHAIN,
    )
    blind = await AuditService(audit.postgres, AnchorStore(tmp_path / "other-machine.jsonl")).verify()
    assert blind.ok  # the chain alone cannot tell
    report = await audit.verify()
    assert not report.ok and report.broken_id == ids[2]
    assert "rewritten" in report.reason and "recomputed" in report.reason


async def test_a_head_the_operator_kept_catches_a_rewrite_with_no_anchors_on_this_machine(
    written, seeded_db, tmp_path
):
    audit, ids = written
    head = (await audit.verify()).head
    other_machine = AuditService(audit.postgres, AnchorStore(tmp_path / "other-machine.jsonl"))
    await as_superuser(
        seeded_db,
        "ALTER TABLE ops.audit_log DISABLE TRIGGER audit_log_no_update",
        f"DELETE FROM ops.audit_log WHERE id = {ids[-1]}",
    )
    report = await other_machine.verify(head=head)
    assert not report.ok and report.broken_id == ids[-1] and "the head you kept" in report.reason
    wrong = Head(ids[1], "0" * 64)
    assert (await audit.verify(head=wrong)).broken_id == ids[1]


def test_a_head_is_parsed_from_what_verify_prints():
    digest = "ab" * 32
    assert Head.parse(f"42:{digest.upper()}") == Head(42, digest)
    assert str(Head(42, digest)) == f"42:{digest}"
    for bad in ("42", f"x:{digest}", "42:abc", f"42:{'g' * 64}"):
        with pytest.raises(ValueError):
            Head.parse(bad)


async def test_anchors_are_per_database_and_survive_reconnects(seeded_runtime_db, empty_runtime_db, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    first = audit_service(seeded_runtime_db, anchors)
    other_db = audit_service(empty_runtime_db, anchors)
    try:
        await write_rows(first, 2)
        assert (await first.database()).key != (await other_db.database()).key
        assert (await other_db.verify()).anchors == 0  # another database's anchors do not count
        await first.postgres.close()
        reconnected = audit_service(seeded_runtime_db, anchors)
        assert (await reconnected.verify()).anchors == 2
        await reconnected.postgres.close()
    finally:
        await first.postgres.close()
        await other_db.postgres.close()


async def test_a_torn_line_in_the_anchor_file_is_skipped_not_fatal(written, tmp_path):
    audit, _ids = written
    with (tmp_path / "anchors.jsonl").open("a") as handle:
        handle.write('{"database": "torn')
    report = await audit.verify()
    assert report.ok and report.anchors == 6


async def test_by_default_anchors_go_to_the_users_state_dir(seeded_runtime_db, _private_state_dir):
    audit = AuditService(PostgresService(PostgresConfig(dsn=seeded_runtime_db)))
    try:
        await write_rows(audit, 1)
    finally:
        await audit.postgres.close()
    assert audit.anchors.path.is_relative_to(_private_state_dir) and audit.anchors.path.exists()
    assert audit.anchors.path.stat().st_mode & 0o077 == 0  # only its user reads it
