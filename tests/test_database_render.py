"""What the Database area draws, as pure functions: session rows (idle in transaction
highlighted, long ones coloured, marked, the horizon's holder), the full query pane, the
lock tree's rows, table and index rows (locked ones say so), statements, the status line.
A backend's text is inert: an escape sequence in a query is shown, never sent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from screens.database_render import (
    activity_row,
    filters_line,
    index_row,
    lock_rows,
    ms_text,
    query_pane,
    statement_row,
    statement_rows,
    status_text,
    table_row,
)
from services.dbcare_model import (
    Connections,
    Filters,
    IndexHealth,
    Locks,
    Replica,
    Replication,
    Session,
    Statement,
    TableHealth,
    lock_forest,
)

NOW = datetime(2025, 1, 8, 12, 0, tzinfo=UTC)


def session(pid: int = 42, **kw) -> Session:
    base = Session(pid, "agis", "agis_bot", "agis-bot", "10.0.0.7:51234", "client backend", "active",
                   "Timeout", "PgSleep", 75.0, 80.0, 75.0, 12, False, "SELECT pg_sleep(600)")  # fmt: skip
    return replace(base, **kw)


def cells(row) -> list[str]:
    return [getattr(c, "plain", str(c)) for c in row]


def test_a_session_row_and_its_colours():
    row = activity_row(session())
    assert cells(row) == [" 42", "active", "1m15s", "1m20s", "Timeout: PgSleep", "SELECT pg_sleep(600)",
                          "agis_bot", "agis", "agis-bot", "10.0.0.7:51234", "12"]  # fmt: skip
    assert row[2].style == "yellow"  # over a minute
    idle_tx = activity_row(session(state="idle in transaction", xact_seconds=900.0), marked=True, horizon=42)
    assert cells(idle_tx)[:4] == ["•42", "idle in tx", "15m00s", "15m00s"]
    assert "yellow" in str(idle_tx[1].style) and idle_tx[2].style == "bold red"
    assert idle_tx[10].plain == "12 ◀ horizon"
    aborted = activity_row(session(state="idle in transaction (aborted)"))
    assert aborted[1].plain == "aborted tx" and "red" in str(aborted[1].style)
    waits = activity_row(session(wait_event_type="Lock", wait_event="transactionid"))
    assert waits[4].plain == "Lock: transactionid" and waits[4].style == "bold red"
    idle = activity_row(
        session(state="idle", state_seconds=3.0, wait_event_type="Client", wait_event="ClientRead")
    )
    assert cells(idle)[2] == "3.0 s" and idle[2].style == "dim"


def test_a_query_is_shown_inert_cut_in_the_row_and_whole_in_the_pane():
    nasty = "SELECT '\x1b[2J\x1b]0;pwned\x07' AS x,\n       " + "long_column, " * 20 + "1"
    s = session(query=nasty, blocked_by=(7, 9), waiting_for="ShareLock on transactionid")
    row = activity_row(s)
    assert "\x1b" not in row[5].plain and "\\x1b[2J" in row[5].plain and row[5].plain.endswith("…")
    pane = query_pane(s, "blocks 51").plain
    assert "\x1b" not in pane and "\x07" not in pane and "\\x1b]0;pwned\\x07" in pane
    assert "pid 42 · agis_bot@agis · agis-bot · 10.0.0.7:51234 · active" in pane
    assert "blocked by 7, 9 ShareLock on transactionid" in pane and "blocks 51" in pane
    assert pane.rstrip().endswith("long_column, 1") and "\n       long_column" in pane  # its lines kept
    assert query_pane(None).plain.startswith("select a session")


def test_lock_rows_as_a_tree_keyed_by_path():
    a, b = (
        session(1, wait_event_type=None, wait_event=None),
        session(2, blocked_by=(1,), waiting_for="ShareLock on transactionid"),
    )
    c = session(3, blocked_by=(1, 2), waiting_for="AccessExclusiveLock on plans")
    rows = lock_rows(Locks(lock_forest([a, b, c]), None, 3))
    assert list(rows) == ["1", "1/2", "1/2/3", "1/3"]
    assert [r[0].plain for r in rows.values()] == ["1", "└ 2", "  └ 3 +1", "└ 3 +2"]
    assert rows["1"][3].plain == "blocks others" and rows["1/3"][3].plain == "AccessExclusiveLock on plans"


def test_table_and_index_rows_say_locked_and_unused():
    vacuumed = NOW - timedelta(hours=5)
    t = TableHealth(
        "public", "orders", 3 * 2**20, 2 * 2**20, 2**20, 6000, 3000, None, vacuumed, None, None, 2**20
    )
    # An estimate from the statistics reads "~"; pgstattuple_approx's measure does not.
    shown = ["public.orders", "3.0 MiB", "1.0 MiB", "6,000", "3,000 33%", "~1.0 MiB", "5h", "never"]
    assert cells(table_row(t, NOW)) == shown
    assert cells(table_row(replace(t, bloat_measured=True), NOW))[5] == "1.0 MiB"
    locked = replace(t, total_bytes=None, index_bytes=None)
    assert cells(table_row(locked, NOW))[1:3] == ["locked", "locked"]
    unused = IndexHealth("public", "orders", "orders_note_idx", 8192, 0, False, False, True)
    assert cells(index_row(unused)) == ["orders_note_idx", "8.0 KiB", "0", "unused"]
    assert cells(index_row(replace(unused, unique=True)))[3] == "constraint"
    assert cells(index_row(replace(unused, valid=False)))[3] == "INVALID"


def test_statements_status_and_filters():
    st = Statement(1, "SELECT * FROM orders WHERE id = $1", "agis_bot", 1200, 9100.0, 7.58, 155.0, 1200)
    assert cells(statement_row(st)) == ["9.1 s", "1,200", "7.58 ms", "155 ms", "1,200",
                                        "SELECT * FROM orders WHERE id = $1"]  # fmt: skip
    assert [ms_text(v) for v in (0.42, 12.0, 2500.0)] == ["0.42 ms", "12 ms", "2.5 s"]
    # The same query by two roles, and twice by one (top-level and nested): three rows, in order.
    twice = [st, replace(st, user="ops_console", total_ms=50.0), replace(st, total_ms=10.0)]
    rows = statement_rows(twice)
    assert [r[0].plain for r in rows.values()] == ["9.1 s", "50 ms", "10 ms"] and len(set(rows)) == 3
    c = Connections(88, 100, 3, "agis", 50 * 2**20, "15.4", False)
    replication = Replication([Replica("standby1", "streaming", 0.4, 0), Replica("read host db-ro:5432/agis",
                              "replaying", 45.0, 2**20)], "db-ro:5432/agis")  # fmt: skip
    line = status_text("db:5432/agis", c, replication).plain
    assert "connections 88/97" in line and "91%" in line and "· 50.0 MiB" in line
    assert (
        "standby1: streaming, caught up" in line
        and "read host db-ro:5432/agis: replaying, lag 45 s, 1.0 MiB behind" in line
    )
    said = filters_line(Filters(state="active", min_seconds=5), 3, 40, "the primary").plain
    assert said.startswith("3 of 40 sessions on the primary · filters: state active, ≥ 5 s")
