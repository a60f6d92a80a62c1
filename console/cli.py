"""The command line: `opsconsole` (the TUI), `demo`, `migrate`, `doctor`.
Builds Settings -> Services -> the App or a headless command."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from console.main import run_tui
from console.resolved import Resolved
from console.settings import ConfigError, load_settings

cli = typer.Typer(
    name="opsconsole",
    help="Ops console for a game-server hosting business: orders, nodes, backups, incidents.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML config file (default: the user's config dir).", show_default=False
    ),
]


def fail(lines: list[str], code: int) -> typer.Exit:
    for line in lines:
        typer.echo(f"opsconsole: {line}", err=True)
    return typer.Exit(code)


def settings_or_exit(config: Path | None) -> Resolved:
    """Settings, or exit 2 with one line per problem."""
    try:
        return load_settings(config).resolved()
    except ConfigError as exc:
        raise fail([f"config: {line}" for line in exc.problems], 2) from None


@cli.callback(invoke_without_command=True)
def main_command(
    ctx: typer.Context,
    config: ConfigOption = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Hide and block every action.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show previews and check preconditions; change nothing.")
    ] = False,
) -> None:
    """Open the console (the TUI) when no command is given."""
    ctx.obj = {"config": config, "read_only": read_only, "dry_run": dry_run}
    if ctx.invoked_subcommand is None:
        run_tui(settings_or_exit(config), read_only=read_only, dry_run=dry_run)


def _config(ctx: typer.Context, config: Path | None) -> Path | None:
    return config or (ctx.obj or {}).get("config")


@cli.command()
def doctor(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Check configuration and every backend: one line each; exit 0 only if all configured answer."""
    from console.wiring import build_services
    from services.doctor import run_doctor

    settings = settings_or_exit(_config(ctx, config))
    services = build_services(settings)

    async def go():
        await services.open()
        try:
            return await run_doctor(services.probes())
        finally:
            await services.close()

    findings = asyncio.run(go())
    width = max(len(f.backend) for f in findings)
    for finding in findings:
        name = finding.backend.ljust(width)
        if finding.state == "ok" and finding.ping:
            ping = finding.ping
            where = f"  {ping.where}" if ping.where else ""
            typer.echo(f"{name}  ok              {ping.version}, {ping.rtt_ms:.0f} ms{where}")
        elif finding.state == "not configured":
            typer.echo(f"{name}  not configured  ({finding.reason})")
        else:
            typer.echo(f"{name}  FAILING         {finding.reason}")
    failing = [f for f in findings if not f.passed]
    configured = [f for f in findings if f.state != "not configured"]
    typer.echo(
        f"{len(configured) - len(failing)} of {len(configured)} configured backends answer"
        + (f"; failing: {', '.join(f.backend for f in failing)}" if failing else "")
    )
    raise typer.Exit(1 if failing else 0)


@cli.command()
def migrate(
    ctx: typer.Context,
    config: ConfigOption = None,
    with_reference_schema: Annotated[
        bool,
        typer.Option(
            "--with-reference-schema",
            help="Also create the reference copy of the business tables (demo/test databases only).",
        ),
    ] = False,
) -> None:
    """Apply pending migrations (the ops schema); safe to run twice or concurrently."""
    from console.wiring import build_services
    from services.errors import ServiceError
    from services.migrations import migrate as apply

    settings = settings_or_exit(_config(ctx, config))
    postgres = build_services(settings).postgres

    async def go():
        try:
            async with postgres.connection() as conn:
                return await apply(conn, with_reference=with_reference_schema, progress=typer.echo)
        finally:
            await postgres.close()

    try:
        report = asyncio.run(go())
    except ServiceError as exc:
        raise fail([str(exc)], 1) from None
    typer.echo(
        f"{postgres.where}: {len(report.applied)} applied, {report.already_applied} already applied"
        + (
            f", {len(report.skipped_reference)} reference-schema migrations skipped "
            "(pass --with-reference-schema on a demo or test database)"
            if report.skipped_reference
            else ""
        )
    )


@cli.command()
def demo(
    reset: Annotated[
        bool, typer.Option("--reset", help="Throw the demo database away and reseed it.")
    ] = False,
    read_only: Annotated[bool, typer.Option("--read-only", help="Hide and block every action.")] = False,
) -> None:
    """Open the console on the embedded demo: a real PostgreSQL, migrated and seeded."""
    from console.sandbox.demo import run_demo

    code = run_demo(reset=reset, read_only=read_only)
    raise typer.Exit(code)


orders_cli = typer.Typer(help="Orders: the headless twin of the orders screen.", no_args_is_help=False)
cli.add_typer(orders_cli, name="orders")
audit_cli = typer.Typer(help="The audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


def _with_services(settings: Resolved, work):
    """Run `work(services)` on a fresh event loop; ServiceError exits 1 with its message."""
    from console.wiring import build_services
    from services.errors import ServiceError

    services = build_services(settings)

    async def go():
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(go())
    except ServiceError as exc:
        raise fail([str(exc)], 1) from None


@orders_cli.callback(invoke_without_command=True)
def orders_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of orders.")] = False,
    stuck: Annotated[bool, typer.Option("--stuck", help="Paid over 10 minutes ago, no server.")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="Orders in error.")] = False,
    search: Annotated[
        str | None, typer.Option("--search", help="Order id, user id, email or server name.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 200,
) -> None:
    """List orders (newest first unless --stuck or --errors)."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    if sum([stuck, errors, search is not None]) > 1:
        raise fail(["orders: choose one of --stuck, --errors, --search"], 2)
    view = "stuck" if stuck else "errors" if errors else "search" if search is not None else "recent"
    settings = settings_or_exit(_config(ctx, config))
    page = _with_services(settings, lambda s: s.orders.page(view, query=search or "", limit=limit))
    if as_json:
        typer.echo(json.dumps([o.as_json() for o in page.orders], indent=2))
        return
    for o in page.orders:
        waited = f"{o.minutes_waiting:6.0f} min" if o.minutes_waiting else ""
        typer.echo(f"{o.id}  {o.status:<12} {o.server_name:<28} {o.email:<32} {waited}")
    typer.echo(f"{len(page.orders)} orders ({view})" + (", more not shown" if page.more else ""))


@orders_cli.command("retry")
def orders_retry(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order to provision again.")],
    config: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Preview and check; change nothing.")] = False,
) -> None:
    """Retry provisioning of one order: the same action, role check and audit as the TUI."""
    import os
    import uuid

    from services.order_actions import RETRY
    from services.orders import parse_uuid
    from services.runbook import Actor, Runbook

    target = parse_uuid(order_id)
    if target is None:
        raise fail([f"orders retry: {order_id!r} is not an order id (a uuid)"], 2)
    settings = settings_or_exit(_config(ctx, config))
    actor = Actor(settings.operator, settings.role, f"cli-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                  read_only=settings.read_only, dry_run=dry_run)  # fmt: skip

    async def work(services):
        book = Runbook(services, actor)
        plan = await book.plan(RETRY, target)
        typer.echo(plan.preview.summary)
        for call in plan.preview.calls:
            typer.echo("  " + call.replace("\n", "\n  "))
        if plan.refusal and not dry_run:
            typer.echo(f"cannot run: {plan.refusal}")
        if not (yes or dry_run) and not plan.refusal:
            if not typer.confirm(f"{RETRY.title} for order {target}?"):
                return None
        return await book.execute(RETRY, target, progress=lambda m: typer.echo(f"… {m}", err=True))

    outcome = _with_services(settings, work)
    if outcome is None:
        raise fail(["nothing done"], 1)
    typer.echo(f"{outcome.status}: {outcome.message}")
    raise typer.Exit(0 if outcome.status in ("ok", "dry-run") else 1)


@audit_cli.command("verify")
def audit_verify(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Check the audit log's hash chain; names the first broken row. Exit 1 if broken."""
    from services.audit import AuditService

    settings = settings_or_exit(_config(ctx, config))
    report = _with_services(settings, lambda s: AuditService(s.postgres).verify())
    if report.ok:
        typer.echo(f"audit chain intact: {report.rows:,} rows")
        return
    raise fail([f"audit chain broken at row {report.broken_id}: {report.reason}"], 1)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
