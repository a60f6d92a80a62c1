"""`opsconsole db activity|locks|tables|slow` (the Database area headless, the same queries)
and `db cancel|terminate|vacuum|analyze|reindex`, each change through the same runbook action
as the screen's key (preview, role, claim, audit); `db outage` walks the outage runbook."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from console.commands.common import (
    ConfigOption,
    ConfirmOption,
    DryRunOption,
    JsonOption,
    YesOption,
    echo,
    fail,
    run_action,
    settings_or_exit,
    with_services,
)

db_cli = typer.Typer(
    help="The database: sessions, locks, table health, slow queries; cancel, terminate, maintenance.",
    no_args_is_help=True,
)

QUERY_WIDTH = 70


def _action(name: str):
    from services.actions import ALL_ACTIONS

    return ALL_ACTIONS[name]


def _size(n: int | None) -> str:
    """A size, or 'locked' when the table was locked exclusively (sizing it would wait)."""
    from services.text import human_bytes

    return "locked" if n is None else human_bytes(n)


def _secs(value: float | None) -> str:
    from services.dbcare_model import human_seconds

    return human_seconds(value)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


@db_cli.command("activity")
def db_activity(
    ctx: typer.Context,
    state: Annotated[
        str, typer.Option("--state", help="active, idle, 'idle in transaction' or waiting (default: all).")
    ] = "",
    min_seconds: Annotated[
        float, typer.Option("--min-seconds", min=0, help="Only sessions at it this long.")
    ] = 0,
    database: Annotated[str, typer.Option("--database", help="Only this database's sessions.")] = "",
    text: Annotated[
        str, typer.Option("--text", help="Only sessions whose query, user or app has this.")
    ] = "",
    replica: Annotated[
        bool, typer.Option("--replica", help="The read replica's (DB_READ_HOST) sessions.")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every client session (pg_stat_activity), longest first: pid, user, state, wait, durations, query."""
    from services.dbcare_model import STATES, Filters, one_line

    if state not in STATES:
        raise fail([f"--state: choose one of {', '.join(repr(s) for s in STATES if s)}"], 2)
    settings = settings_or_exit(ctx, config)
    filters = Filters(state, min_seconds, database, text)

    async def read(services):
        if replica and not services.dbcare.has_replica:
            raise fail(["--replica: DB_READ_HOST is not set"], 2)
        sessions = await services.dbcare.activity(replica=replica, filters=filters)
        return sessions, await services.dbcare.connections(), await services.dbcare.replication()

    sessions, conns, replication = with_services(settings, read)
    if as_json:
        typer.echo(json.dumps({
            "sessions": [s.as_json() for s in sessions], "filters": filters.describe(),
            "connections": {"used": conns.used, "max": conns.max_connections, "reserved": conns.reserved},
            "replicas": [vars(r) for r in replication.replicas],
            "read_host_problem": replication.read_host_problem or None,
        }, indent=2, default=str))  # fmt: skip
        return
    echo(f"connections {conns.used} of {conns.max_connections} ({conns.reserved} reserved for superusers)"
         f" · filters: {filters.describe()}")  # fmt: skip
    echo(
        f"{'pid':>7} {'database':<12} {'user':<12} {'state':<20} {'wait':<22} {'query':>8} {'xact':>8}  query"
    )
    for s in sessions:
        idle_tx = "!" if s.idle_in_transaction else " "
        echo(f"{s.pid:>7} {(s.database or '')[:12]:<12} {(s.user or '')[:12]:<12} {(s.state or '?')[:19]:<19}"
             f"{idle_tx}{s.wait[:22]:<22} {_secs(s.query_seconds):>8} {_secs(s.xact_seconds):>8}  "
             f"{one_line(s.query, QUERY_WIDTH)}")  # fmt: skip
    if not sessions:
        echo("(no client sessions" + (" match the filters)" if filters.any else ")"))
    for r in replication.replicas:
        echo(f"replica {r.name}: {r.state}, lag {_secs(r.lag_seconds)}, {_size(r.behind_bytes)} behind")
    if replication.read_host_problem:
        echo(f"! {replication.read_host_problem}")


@db_cli.command("locks")
def db_locks(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Who blocks whom (pg_blocking_pids) as a tree, and what holds back the xmin horizon."""
    from services.dbcare_model import one_line

    settings = settings_or_exit(ctx, config)
    locks = with_services(settings, lambda s: s.dbcare.locks())
    if as_json:

        def tree(node) -> dict[str, Any]:
            return {**node.session.as_json(), "also_blocked_by": list(node.also),
                    "blocks": [tree(c) for c in node.children]}  # fmt: skip

        typer.echo(json.dumps({
            "trees": [tree(t) for t in locks.forest],
            "horizon": vars(locks.horizon) if locks.horizon else None,
        }, indent=2, default=str))  # fmt: skip
        return
    if not locks.forest:
        echo(f"no session waits on another's lock ({locks.sessions} client sessions)")
    for root in locks.forest:
        for depth, node in root.walk():
            s = node.session
            lead = "  " * depth + ("└ " if depth else "")
            also = f" (also waits for {', '.join(map(str, node.also))})" if node.also and depth else ""
            waits = f" waits for {s.waiting_for}" if s.waiting_for else ""
            echo(f"{lead}{s.pid} {s.user or '?'} {s.state or '?'} {_secs(s.duration)}{waits}{also}: "
                 f"{one_line(s.query, QUERY_WIDTH)}")  # fmt: skip
    if locks.horizon:
        echo(locks.horizon.line())


@db_cli.command("tables")
def db_tables(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many tables, largest first.")] = 40,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every table's size (the AGIS manual's query, every schema), rows, dead rows, vacuum and
    analyze, bloat; unused indexes; connections used against max_connections."""
    settings = settings_or_exit(ctx, config)
    health = with_services(settings, lambda s: s.dbcare.health())
    c = health.connections
    if as_json:
        typer.echo(json.dumps({
            "connections": vars(c),
            "tables": [{**vars(t), "qualified": t.qualified} for t in health.tables],
            "indexes": [{**vars(i), "unused": i.unused} for i in health.indexes],
        }, indent=2, default=str))  # fmt: skip
        return
    echo(f"database {c.database}: {_size(c.database_bytes)} · connections {c.used} of {c.max_connections} "
         f"({c.used_pct:.0f}% of those open to ordinary logins)")  # fmt: skip
    echo(f"{'table':<36} {'size':>10} {'indexes':>10} {'rows':>10} {'dead':>8} {'bloat':>10}  "
         f"{'vacuumed':<16}  analyzed")  # fmt: skip
    for t in health.tables[:limit]:
        dead = "—" if t.dead_rows is None else f"{t.dead_rows:,}"
        rows = "—" if t.rows is None else f"{t.rows:,}"
        sizes = f"{_size(t.total_bytes):>10} {_size(t.index_bytes):>10}"
        echo(f"{t.qualified[:36]:<36} {sizes} {rows:>10} {dead:>8} {_size(t.bloat_bytes):>10}  "
             f"{_when(t.vacuumed):<16}  {_when(t.analyzed)}")  # fmt: skip
    unused = health.unused_indexes
    wasted = _size(sum(i.bytes or 0 for i in unused))
    echo(f"\nunused indexes (idx_scan = 0, no constraint): {len(unused)}, {wasted}")
    for i in unused[:20]:
        echo(f"  {i.schema}.{i.name:<40} on {i.table:<24} {_size(i.bytes):>10}")


@db_cli.command("slow")
def db_slow(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="How many statements.")] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The statements that took the most time (pg_stat_statements), or how to enable it and the
    live long-running queries."""
    from services.dbcare_model import one_line

    settings = settings_or_exit(ctx, config)
    slow = with_services(settings, lambda s: s.dbcare.slow(limit))
    if as_json:
        typer.echo(json.dumps({
            "available": slow.available, "problem": slow.problem or None,
            "how_to_enable": list(slow.how_to_enable),
            "statements": [vars(s) for s in slow.statements],
            "long_running": [s.as_json() for s in slow.long_running],
        }, indent=2, default=str))  # fmt: skip
        return
    if not slow.available:
        echo(f"! {slow.problem}; to enable it:")
        for line in slow.how_to_enable:
            echo(f"  - {line}")
        echo(f"\nqueries running longer than 5 s now: {len(slow.long_running)}")
        for s in slow.long_running:
            echo(f"  {s.pid:>7} {_secs(s.duration):>8} {s.user or '?'}: {one_line(s.query, QUERY_WIDTH)}")
        return
    echo(f"{'calls':>9} {'total':>10} {'mean':>9} {'max':>9} {'rows':>10}  query")
    for st in slow.statements:
        echo(f"{st.calls:>9,} {st.total_ms / 1000:>9.1f}s {st.mean_ms:>7.1f}ms {st.max_ms:>7.0f}ms "
             f"{st.rows:>10,}  {one_line(st.query, QUERY_WIDTH)}")  # fmt: skip


def _checked_pid(value: str) -> str:
    """The pid argument, or exit 2 saying why it is none (before any backend)."""
    from services.db_actions import parse_pid

    try:
        return str(parse_pid(value))
    except ValueError as exc:
        raise fail([f"pid: {exc}"], 2) from None


PidArgument = Annotated[
    str, typer.Argument(help="The session's pid (see `opsconsole db activity`).", callback=_checked_pid)
]


@db_cli.command("cancel")
def db_cancel(
    ctx: typer.Context,
    pid: PidArgument,
    wait: Annotated[float, typer.Option("--wait", min=0, max=60, help="Seconds the query has to end.")] = 3.0,
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Cancel a session's running query (pg_cancel_backend); exits 1 when it still runs after --wait."""
    run_action(ctx, _action("cancel_query"), pid, {"wait": f"{wait:g}"}, config=config, yes=yes,
               dry_run=dry_run, as_json=as_json)  # fmt: skip


@db_cli.command("terminate")
def db_terminate(
    ctx: typer.Context,
    pid: PidArgument,
    config: ConfigOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Close a session (pg_terminate_backend): its transaction rolls back. Destructive: --confirm PID."""
    run_action(ctx, _action("terminate_session"), pid, {}, config=config, confirm=confirm, dry_run=dry_run,
               as_json=as_json)  # fmt: skip


def _maintain(
    ctx, target: str, command: str, config, yes: bool, dry_run: bool, confirm, as_json: bool
) -> None:
    run_action(ctx, _action("db_maintenance"), target, {"command": command}, config=config, yes=yes,
               dry_run=dry_run, confirm=confirm, as_json=as_json)  # fmt: skip


TableArgument = Annotated[
    str | None, typer.Argument(help="schema.table (search_path applies); none: the whole database.")
]


@db_cli.command("vacuum")
def db_vacuum(
    ctx: typer.Context,
    table: TableArgument = None,
    no_analyze: Annotated[bool, typer.Option("--no-analyze", help="VACUUM without ANALYZE.")] = False,
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """VACUUM (ANALYZE) a table or the whole database (the manual's weekly job), with its progress."""
    command = "vacuum" if no_analyze else "vacuum analyze"
    _maintain(ctx, table or "", command, config, yes, dry_run, None, as_json)


@db_cli.command("analyze")
def db_analyze(
    ctx: typer.Context,
    table: TableArgument = None,
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """ANALYZE a table or the whole database: the planner's statistics, fresh."""
    _maintain(ctx, table or "", "analyze", config, yes, dry_run, None, as_json)


@db_cli.command("reindex")
def db_reindex(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="An index, a table, or the database's name.")],
    blocking: Annotated[
        bool,
        typer.Option("--blocking", help="REINDEX without CONCURRENTLY (locks writes out): --confirm TARGET."),
    ] = False,
    config: ConfigOption = None,
    confirm: ConfirmOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """REINDEX ... CONCURRENTLY an index, a table or the database (the manual's monthly job)."""
    command = "reindex" if blocking else "reindex concurrently"
    _maintain(ctx, target, command, config, yes, dry_run, confirm, as_json)


def _register_outage() -> None:
    from console.commands.db_outage import outage

    db_cli.command("outage")(outage)


_register_outage()


def register(cli: typer.Typer) -> None:
    cli.add_typer(db_cli, name="db")
