"""What the Database area draws, as pure functions of DbCareService's dataclasses: a session
row (idle in transaction highlighted, long ones coloured), the selected session's full query,
the lock tree's rows, the xmin horizon, table and index rows, connections, slow statements,
replication. Every value read from the server is shown inert, never read as markup."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from screens.shown import fill, plain
from screens.widgets import short_age
from services.dbcare_model import (
    Connections,
    Filters,
    Horizon,
    IndexHealth,
    Locks,
    Replication,
    Session,
    Slow,
    Statement,
    TableHealth,
    human_seconds,
    one_line,
)
from services.text import human_bytes

ACTIVITY_COLUMNS = (
    "pid",
    "state",
    "for",
    "xact",
    "wait",
    "query",
    "user",
    "database",
    "app",
    "client",
    "xmin",
)
LOCK_COLUMNS = ("session", "state", "for", "waits for", "user", "query")
TABLE_COLUMNS = ("table", "size", "indexes", "rows", "dead", "bloat", "vacuumed", "analyzed")
INDEX_COLUMNS = ("index", "size", "scans", "")
STATEMENT_COLUMNS = ("total", "calls", "mean", "max", "rows", "query")
LIVE_COLUMNS = ("pid", "for", "user", "query")
DATABASE_KEY = "\0database"  # the tables list's first row: the whole database
STATE_SHORT = {
    "idle in transaction": "idle in tx",
    "idle in transaction (aborted)": "aborted tx",
    "fastpath function call": "fastpath",
}
QUERY_CELL = 50


def state_cell(s: Session) -> Text:
    """The state, idle-in-transaction highlighted (it holds locks and the xmin horizon)."""
    shown = STATE_SHORT.get(s.state or "", s.state or "?")
    if s.idle_in_transaction:
        style = "bold black on yellow" if s.state == "idle in transaction" else "bold white on red"
    else:
        style = {"active": "green", "idle": "dim"}.get(s.state or "", "")
    return plain(shown, style)


def seconds_cell(seconds: float | None, *, warn: float = 60, alert: float = 300) -> Text:
    """'12 s', yellow past a minute, red past five."""
    style = "" if seconds is None or seconds < warn else ("bold red" if seconds >= alert else "yellow")
    return Text(human_seconds(seconds), style=style)


def wait_cell(s: Session) -> Text:
    if not s.wait:
        return Text("")
    style = (
        "bold red" if s.wait_event_type == "Lock" else ("dim" if s.wait_event_type == "Client" else "yellow")
    )
    return plain(s.wait, style, limit=20)


def activity_row(s: Session, *, marked: bool = False, horizon: int | None = None) -> tuple:
    """One session: pid (• when marked), state, how long, its transaction, wait, the query
    cut to one line, user, database, application, client, and its xmin age (◀ when it
    holds back the horizon)."""
    pid = Text(f"•{s.pid}" if marked else f" {s.pid}", style="bold cyan" if marked else "")
    xmin = "—" if s.xmin_age is None else f"{s.xmin_age:,}"
    held = s.pid == horizon and s.xmin_age is not None
    return (
        pid,
        state_cell(s),
        Text(human_seconds(s.state_seconds), style="dim") if s.state == "idle" else seconds_cell(s.duration),
        seconds_cell(s.xact_seconds),
        wait_cell(s),
        plain(
            one_line(s.query, QUERY_CELL),
            "dim" if s.state == "idle" or s.application.startswith("opsconsole") else "",
        ),
        plain(s.user or "", limit=16),
        plain(s.database or "", limit=16),
        plain(s.application, "dim", limit=20),
        plain(s.client, "dim"),
        Text(f"{xmin} ◀ horizon" if held else xmin, style="bold yellow" if held else "dim"),
    )


def query_pane(s: Session | None, blocked_names: str = "") -> Text:
    """The selected session in full: who, where from, each duration, what it waits on, and
    its whole query (its lines kept)."""
    if s is None:
        return Text("select a session: its full query shows here", style="dim")
    head = fill(
        "[b]pid {}[/b] · {}@{} · {} · {} · [b]{}[/b]",
        s.pid,
        s.user or "?",
        s.database or "?",
        s.application or "no application_name",
        s.client,
        s.state or "?",
    )
    times = [f"query {human_seconds(s.query_seconds)}", f"transaction {human_seconds(s.xact_seconds)}",
             f"state {human_seconds(s.state_seconds)}"]  # fmt: skip
    if s.xmin_age is not None:
        times.append(f"xmin age {s.xmin_age:,}")
    head.append("\n" + " · ".join(times), style="dim")
    if s.wait:
        head.append_text(fill("\nwaits on [yellow]{}[/]", s.wait))
    if s.blocked_by:
        head.append_text(fill("\n[b red]blocked by {}[/] {}", ", ".join(map(str, s.blocked_by)),
                              s.waiting_for or ""))  # fmt: skip
    if blocked_names:
        head.append_text(fill("\n[b yellow]{}[/]", blocked_names))
    head.append("\n\n")
    lines = (s.query.rstrip() or "(no query yet)").expandtabs(4).split("\n")
    head.append_text(Text("\n").join(plain(line.rstrip("\r")) for line in lines))  # each line inert
    return head


def filters_line(filters: Filters, shown: int, total: int, where: str) -> Text:
    """'12 of 40 sessions on primary · state active, ≥ 5 s' and the filter keys."""
    line = fill("{} of {} sessions on {}", shown, total, where)
    if filters.any:
        line.append_text(fill(" · [b yellow]filters: {}[/]", filters.describe()))
    line.append("   f state · m min · d db · / text · c clear", style="dim")
    return line


# -- locks ------------------------------------------------------------------------------


def lock_rows(locks: Locks) -> dict[str, tuple]:
    """The lock trees as table rows, keyed by the path of pids from the root ('12/34/56'):
    a session with several blockers shows under each, saying which others it waits for."""
    rows: dict[str, tuple] = {}
    for tree in locks.forest:
        path: list[str] = []
        for depth, node in tree.walk():
            path[depth:] = [str(node.session.pid)]
            s = node.session
            lead = "  " * (depth - 1) + "└ " if depth else ""
            label = Text(lead + str(s.pid), style="bold red" if depth == 0 else "")
            if node.also:
                label.append(f" +{','.join(map(str, node.also))}", style="yellow")
            if node.depth_cut:
                label.append(" (cycle)", style="bold red")
            rows["/".join(path)] = (
                label,
                state_cell(s) if s.state else plain(s.backend_type, "dim"),
                seconds_cell(s.duration),
                plain(
                    s.waiting_for or ("blocks others" if depth == 0 else ""), "yellow" if depth else "bold"
                ),
                plain(s.user or "", limit=16),
                plain(one_line(s.query, QUERY_CELL)),
            )
    return rows


def horizon_text(horizon: Horizon | None, sessions: int) -> Text:
    """The xmin horizon's holder, yellow past 5 minutes or a million transactions."""
    if horizon is None:
        return Text(
            f"no snapshot is held ({sessions} client sessions): VACUUM may clean up to now", style="dim"
        )
    old = (horizon.seconds or 0) > 300 or horizon.xid_age > 1_000_000
    return fill("[b yellow]{}[/]" if old else "{}", horizon.line())


def locks_summary(locks: Locks) -> Text:
    if not locks.forest:
        return Text(f"no session waits on another's lock ({locks.sessions} client sessions)", style="green")
    waiting = sum(1 for tree in locks.forest for depth, _ in tree.walk() if depth)
    return fill("[b red]{} lock trees[/]: {} waits; the root (red) blocks the sessions under it · "
                "+N: also waits for N", len(locks.forest), waiting)  # fmt: skip


# -- tables -----------------------------------------------------------------------------


def when_cell(at: datetime | None, now: datetime | None = None) -> Text:
    return Text("never", style="dim") if at is None else Text(short_age(at, now or datetime.now(UTC)))


def size_cell(n: int | None) -> Text:
    """A size, or 'locked' (yellow) while an exclusive lock is held on it: sizing would wait."""
    return Text("locked", style="bold yellow") if n is None else Text(human_bytes(n))


def table_row(t: TableHealth, now: datetime | None = None) -> tuple:
    dead = t.dead_pct
    dead_text = "—" if t.dead_rows is None else f"{t.dead_rows:,}" + (f" {dead:.0f}%" if dead else "")
    # Measured (pgstattuple_approx) as it is; a statistics-based estimate with "~".
    bloat = "—" if t.bloat_bytes is None else ("" if t.bloat_measured else "~") + human_bytes(t.bloat_bytes)
    heavy = t.bloat_bytes is not None and t.heap_bytes and t.bloat_bytes > 0.3 * t.heap_bytes
    return (
        plain(t.qualified, limit=40),
        size_cell(t.total_bytes),
        size_cell(t.index_bytes),
        "—" if t.rows is None else f"{t.rows:,}",
        Text(dead_text, style="yellow" if dead and dead > 20 else ""),
        Text(bloat, style="yellow" if heavy else ""),
        when_cell(t.vacuumed, now),
        when_cell(t.analyzed, now),
    )


def database_row(c: Connections, tables: list[TableHealth]) -> tuple:
    """The tables list's first row: the whole database (what H maintains when it is selected)."""
    return (
        fill("[b]database {}[/b]", c.database),
        Text(human_bytes(c.database_bytes), style="bold"),
        human_bytes(sum(t.index_bytes or 0 for t in tables)),
        f"{len(tables)} tables",
        "",
        "",
        "",
        "",
    )


def index_row(i: IndexHealth) -> tuple:
    note = "INVALID" if not i.valid else ("unused" if i.unused else ("constraint" if i.unique else ""))
    style = {"INVALID": "bold red", "unused": "yellow"}.get(note, "dim")
    return (plain(i.name, limit=40), size_cell(i.bytes), "—" if i.scans is None else f"{i.scans:,}",
            Text(note, style=style))  # fmt: skip


def connections_text(c: Connections, *, full: bool = True) -> Text:
    """'connections 12 of 97 usable (100 max, 3 for superusers) ▓▓░░░░ 12%'; without the
    parenthesis when not `full` (the area's top line)."""
    pct = c.used_pct
    style = "bold red" if pct >= 90 else ("yellow" if pct >= 75 else "green")
    filled = max(0, min(10, round(pct / 10)))
    line = Text("connections ", style="bold")
    if full:
        line.append(f"{c.used} of {c.max_connections - c.reserved} usable ", style=style)
        line.append(f"({c.max_connections} max, {c.reserved} for superusers) ", style="dim")
    else:
        line.append(f"{c.used}/{c.max_connections - c.reserved} ", style=style)
    line.append("█" * filled, style=style)
    line.append("░" * (10 - filled), style="dim")
    line.append(f" {pct:.0f}%", style=style)
    return line


def unused_text(indexes: list[IndexHealth]) -> Text:
    unused = [i for i in indexes if i.unused]
    invalid = [i for i in indexes if not i.valid]
    line = fill("{} unused indexes (idx_scan = 0, no constraint), {}", len(unused),
                human_bytes(sum(i.bytes or 0 for i in unused)))  # fmt: skip
    if invalid:
        line.append_text(fill(" · [b red]{} INVALID (a failed CONCURRENTLY build): {}[/]", len(invalid),
                              ", ".join(i.name for i in invalid[:3])))  # fmt: skip
    return line


# -- slow, replication, status ------------------------------------------------------------


def ms_text(ms: float) -> str:
    """'8.0 s', '155 ms', '0.42 ms'."""
    if ms >= 1000:
        return f"{ms / 1000:,.1f} s"
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2f} ms"


def statement_row(st: Statement) -> tuple:
    mean_style = "bold red" if st.mean_ms >= 5000 else ("yellow" if st.mean_ms >= 500 else "")
    return (
        Text(ms_text(st.total_ms), style="bold"),
        f"{st.calls:,}",
        Text(ms_text(st.mean_ms), style=mean_style),
        ms_text(st.max_ms),
        f"{st.rows:,}",
        plain(one_line(st.query, QUERY_CELL)),
    )


def statement_rows(statements: list[Statement]) -> dict[str, tuple]:
    """The statements in their order, keyed by queryid and user (the same query run by two
    roles, or nested and top-level, is two statements: a second key gets '#2')."""
    rows: dict[str, tuple] = {}
    for n, st in enumerate(statements):
        key = f"{st.queryid if st.queryid is not None else n}:{st.user}"
        while key in rows:
            key += "#2"
        rows[key] = statement_row(st)
    return rows


def live_row(s: Session) -> tuple:
    return (str(s.pid), seconds_cell(s.duration), plain(s.user or ""), plain(one_line(s.query, QUERY_CELL)))


def slow_text(slow: Slow) -> Text:
    if slow.available:
        return Text(f"the {len(slow.statements)} statements that took the most time (pg_stat_statements), "
                    "heaviest first", style="dim")  # fmt: skip
    text = fill("[b yellow]{}[/]: no statement history. To enable it:", slow.problem)
    for line in slow.how_to_enable:
        text.append_text(fill("\n  · {}", line))
    text.append(
        f"\nmeanwhile, the queries running longer than 5 s now ({len(slow.long_running)}):", style="b"
    )
    return text


def replication_text(r: Replication | None) -> Text:
    if r is None:
        return Text("")
    parts = []
    for replica in r.replicas:
        behind = replica.behind_bytes
        caught_up = behind == 0
        lag = "caught up" if caught_up else f"lag {human_seconds(replica.lag_seconds)}"
        late = not caught_up and (replica.lag_seconds or 0) > 30
        size = f", {human_bytes(behind)} behind" if behind else ""
        parts.append(fill("[b red]{}[/]" if late else "{}", f"{replica.name}: {replica.state}, {lag}{size}"))
    if r.read_host_problem:
        parts.append(fill("[yellow]{}[/]", r.read_host_problem))
    return Text(" · ").join(parts) if parts else Text("")


def status_text(where: str, c: Connections | None, r: Replication | None) -> Text:
    """The area's top line: where, the connections, the replicas' lag."""
    line = fill("[b]{}[/b]", where)
    if c is not None:
        line.append(" · ")
        line.append_text(connections_text(c, full=False))
        line.append(f" · {human_bytes(c.database_bytes)}")
    rep = replication_text(r)
    if rep.plain:
        line.append("\n")
        line.append_text(rep)
    return line
