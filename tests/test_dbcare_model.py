"""The Database area's pure parts: secrets masked in SQL before it is shown or audited, the
lock tree with several blockers and a cycle, the xmin horizon, filters, durations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.dbcare_model import Filters, Session, horizon_of, human_seconds, lock_forest, mask_sql


@pytest.mark.parametrize(
    ("sql", "shown"),
    [
        ("ALTER ROLE bot PASSWORD 'hunter2'", "ALTER ROLE bot PASSWORD '***'"),
        ("CREATE USER x WITH ENCRYPTED PASSWORD 'a''b'", "CREATE USER x WITH ENCRYPTED PASSWORD '***'"),
        (
            "UPDATE cfg SET api_key = 'sk_live_123' WHERE id = 1",
            "UPDATE cfg SET api_key = '***' WHERE id = 1",
        ),
        ("SELECT set_config('app.secret', 'abc', false)", "SELECT set_config('app.secret', 'abc', false)"),
        ("INSERT INTO t (token) VALUES ('x')", "INSERT INTO t (token) VALUES ('x')"),
        (
            "SELECT * FROM users WHERE stripe_key := $$s3cr3t$$",
            "SELECT * FROM users WHERE stripe_key := '***'",
        ),
        ('SELECT \'{"password": "pw"}\'::jsonb', 'SELECT \'{"password": "***"}\'::jsonb'),
        ("SELECT dblink('postgresql://u:pw@db/x', 'q')", "SELECT dblink('postgresql://u:***@db/x', 'q')"),
        ("SELECT dblink('host=db password=pw dbname=x')", "SELECT dblink('host=db password=*** dbname=x')"),
        ("SELECT pg_sleep(60)", "SELECT pg_sleep(60)"),
        ("SELECT 1 FROM orders WHERE keyword = 'rust'", "SELECT 1 FROM orders WHERE keyword = 'rust'"),
    ],
)
def test_secret_literals_are_masked(sql, shown):
    assert mask_sql(sql) == shown
    assert mask_sql(mask_sql(sql)) == shown  # masking twice changes nothing more


def _s(pid: int, *blockers: int, **kw) -> Session:
    base = Session(pid, "agis", "bot", "", "local", "client backend", "active", None, None, 1.0, 2.0, 1.0,
                   None, False, f"q{pid}", tuple(blockers))  # fmt: skip
    return replace(base, **kw)


def test_the_lock_tree_puts_a_session_with_two_blockers_under_each():
    forest = lock_forest([_s(1), _s(2, 1), _s(3, 1, 2), _s(4), _s(5, 4)])
    assert [[(d, n.session.pid, n.also) for d, n in t.walk()] for t in forest] == [
        [(0, 1, ()), (1, 2, ()), (2, 3, (1,)), (1, 3, (2,))],
        [(0, 4, ()), (1, 5, ())],
    ]
    assert lock_forest([_s(1), _s(2)]) == []


def test_a_blocker_that_is_no_client_backend_is_still_a_root_and_a_cycle_ends():
    (tree,) = lock_forest([_s(7, 99)])
    assert tree.session.pid == 99 and tree.session.backend_type == "(not a client backend)"
    (cycle,) = lock_forest([_s(1, 2), _s(2, 1)])
    walked = [(d, n.session.pid, n.depth_cut) for d, n in cycle.walk()]
    assert walked == [(0, 1, False), (1, 2, False), (2, 1, True)]


def test_the_horizon_is_the_oldest_xmin_then_the_longest_transaction():
    sessions = [_s(1, xmin_age=5, xact_seconds=3.0), _s(2, xmin_age=5, xact_seconds=90.0),
                _s(3, xmin_age=9, me=True), _s(4)]  # fmt: skip
    assert horizon_of(sessions).pid == 2
    slot = [{"kind": "replication slot", "name": "standby1", "xid_age": 40}]
    assert (
        horizon_of(sessions, slot).line()
        == "xmin horizon held by replication slot standby1 (40 transactions behind)"
    )
    assert horizon_of([_s(4)]) is None


def test_filters_and_durations():
    active = _s(1, query_seconds=12.0)
    idle_tx = _s(2, state="idle in transaction", xact_seconds=300.0, query="UPDATE orders")
    waiting = _s(3, wait_event_type="Lock", wait_event="transactionid", database="other")
    assert idle_tx.duration == 300.0 and active.duration == 12.0
    assert [s.pid for s in (active, idle_tx, waiting) if Filters(state="waiting").keep(s)] == [3]
    assert [s.pid for s in (active, idle_tx, waiting) if Filters(min_seconds=60).keep(s)] == [2]
    assert [s.pid for s in (active, idle_tx, waiting) if Filters(text="update").keep(s)] == [2]
    assert [s.pid for s in (active, idle_tx, waiting) if Filters(database="other").keep(s)] == [3]
    assert Filters(state="active", min_seconds=5).describe() == "state active, ≥ 5 s"
    assert not _s(9, backend_type="autovacuum worker").cancellable and not _s(9, me=True).cancellable
    assert [human_seconds(v) for v in (0.42, 12, 185, 7440, 266400)] == [
        "0.4 s",
        "12 s",
        "3m05s",
        "2h04m",
        "3d02h",
    ]
