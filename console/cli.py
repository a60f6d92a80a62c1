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


def _run_action(ctx, config, action, target: str, params: dict, *, yes: bool, dry_run: bool) -> None:
    """Preview `action`, ask (unless --yes), run it with the same role check, claim and
    audit as the TUI, print the outcome; exits 0 only when it went through."""
    import os
    import uuid

    from services.runbook import Actor, Confirmation, Runbook

    settings = settings_or_exit(_config(ctx, config))
    actor = Actor(settings.operator, settings.role, f"cli-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                  read_only=settings.read_only, dry_run=dry_run)  # fmt: skip

    async def work(services):
        book = Runbook(services, actor)
        plan = await book.plan(action, target, params)
        typer.echo(plan.preview.summary)
        for call in plan.preview.calls:
            typer.echo("  " + call.replace("\n", "\n  "))
        for warning in plan.preview.warnings:
            typer.echo(f"! {warning}")
        if plan.refusal and not dry_run:
            typer.echo(f"cannot run: {plan.refusal}")
        typed = plan.confirmation is Confirmation.TYPED
        if typed and params.get("confirm") != target and not plan.refusal:
            raise fail([f"{action.title} of {target} is destructive: pass --confirm {target}"], 2)
        if not (yes or dry_run or typed) and not plan.refusal:
            if not typer.confirm(f"{action.title}: {target}?"):
                return None
        return await book.execute(action, target, params, progress=lambda m: typer.echo(f"… {m}", err=True))

    outcome = _with_services(settings, work)
    if outcome is None:
        raise fail(["nothing done"], 1)
    typer.echo(f"{outcome.status}: {outcome.message}")
    raise typer.Exit(0 if outcome.status in ("ok", "dry-run") else 1)


YesOption = Annotated[bool, typer.Option("--yes", help="Confirm without asking.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Preview and check; change nothing.")]


@orders_cli.command("retry")
def orders_retry(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The order to provision again.")],
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Retry provisioning of one order: the same action, role check and audit as the TUI."""
    from services.order_actions import RETRY
    from services.orders import parse_uuid

    target = parse_uuid(order_id)
    if target is None:
        raise fail([f"orders retry: {order_id!r} is not an order id (a uuid)"], 2)
    _run_action(ctx, config, RETRY, target, {}, yes=yes, dry_run=dry_run)


nodes_cli = typer.Typer(help="Game nodes: capacity, forecast, enable and disable.", no_args_is_help=False)
cli.add_typer(nodes_cli, name="nodes")
kube_cli = typer.Typer(help="Kubernetes and Agones: summary, scale, restart.", no_args_is_help=False)
cli.add_typer(kube_cli, name="kube")


@nodes_cli.callback(invoke_without_command=True)
def nodes_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, one object per node.")] = False,
) -> None:
    """Every game node's RAM and how many more servers of each plan fit on it."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from services.nodes import capacity_json

    settings = settings_or_exit(_config(ctx, config))
    capacity = _with_services(settings, lambda s: s.nodes.capacity())
    if as_json:
        typer.echo(json.dumps(capacity_json(capacity), indent=2))
        return
    typer.echo(f"{'node':<16} {'state':<9} {'max':>6} {'headroom':>9} {'used':>6} {'free':>6} {'usage':>6}")
    for n in capacity.nodes:
        level = capacity.level(n)
        typer.echo(f"{n.name:<16} {level:<9} {n.max_ram_gb:>4}GB {n.reserved_headroom_gb:>7}GB "
                   f"{n.used_ram_gb:>4}GB {n.available_ram_gb:>4}GB {n.usage_pct:>5.0f}%")  # fmt: skip
    typer.echo("\nmore servers that fit (enabled nodes):")
    for p in capacity.plans:
        typer.echo(f"  {p.id:<24} {p.ram_gb:>3} GB  {capacity.total_fits(p.id):>4}")


def _node_command(action_name: str, doc: str):
    """`nodes enable NAME` / `nodes disable NAME`: the node action through the engine."""

    def command(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="The node (ptero_nodes.name).")],
        config: ConfigOption = None,
        yes: YesOption = False,
        dry_run: DryRunOption = False,
    ) -> None:
        from services.node_actions import NODE_ACTIONS

        action = next(a for a in NODE_ACTIONS if a.name == action_name)
        _run_action(ctx, config, action, name, {}, yes=yes, dry_run=dry_run)

    command.__doc__ = doc
    return command


nodes_cli.command("enable")(
    _node_command("enable_node", "Put a game node back in the pool new orders are placed on.")
)
nodes_cli.command("disable")(
    _node_command(
        "disable_node", "Take a game node out of the pool new orders go to (its servers keep running)."
    )
)


ContextOption = Annotated[
    str | None, typer.Option("--context", help="kubeconfig context (default: current).")
]
NamespaceOption = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
]


@kube_cli.callback(invoke_without_command=True)
def kube_summary(
    ctx: typer.Context,
    config: ConfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cluster summary as JSON.")] = False,
) -> None:
    """Cluster nodes, pods, deployments, HPAs, Agones fleets and autoscalers, once."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from services.kube_model import summary_json

    settings = settings_or_exit(_config(ctx, config))
    summary = _with_services(settings, lambda s: s.kube.summary(context, namespace))
    data = summary_json(summary)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"context {data['context']} · namespace {data['namespace']}")
    for n in data["nodes"]:
        ready = "Ready" if n["ready"] else "NotReady"
        typer.echo(f"  node {n['name']:<24} {ready:<9} cpu {n['cpu_pct']:>3.0f}% "
                   f"mem {n['memory_pct']:>3.0f}% {' '.join(n['pressures'])}")  # fmt: skip
    for d in data["deployments"]:
        typer.echo(f"  deployment {d['name']:<18} {d['ready']}/{d['desired']} ready")
    problems = [p for p in data["pods"] if p["reason"] or p["phase"] != "Running"]
    typer.echo(f"  pods: {len(data['pods'])}, {len(problems)} not running well")
    for p in problems[:20]:
        typer.echo(f"    {p['name']:<40} {p['reason'] or p['phase']:<20} restarts {p['restarts']}")
    for f in data["fleets"]:
        states = ", ".join(f"{n} {state}" for state, n in sorted(f["gameservers"].items()))
        typer.echo(f"  fleet {f['name']:<18} desired {f['replicas']} · {states or 'no gameservers'}")
    for kind, error in data["errors"].items():
        typer.echo(f"  {kind}: {error}", err=True)


def _kube_params(namespace: str | None, context: str | None, **extra) -> dict:
    return {"namespace": namespace or "", "context": context, **extra}


@kube_cli.command("scale")
def kube_scale(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment (or fleet, with --fleet).")],
    replicas: Annotated[int, typer.Argument(help="How many replicas.", min=0)],
    config: ConfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="Scale an Agones fleet.")] = False,
    confirm: Annotated[str, typer.Option("--confirm", help="The name again: needed to scale to 0.")] = "",
    yes: YesOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Scale a deployment or an Agones fleet (to 0 only with --confirm NAME)."""
    from services.kube_actions import SCALE_DEPLOYMENT, SCALE_FLEET

    settings = settings_or_exit(_config(ctx, config))
    ns = namespace or _default_namespace(settings, context)
    params = _kube_params(ns, context, replicas=replicas, confirm=confirm)
    _run_action(
        ctx, config, SCALE_FLEET if fleet else SCALE_DEPLOYMENT, name, params, yes=yes, dry_run=dry_run
    )


@kube_cli.command("restart")
def kube_restart(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    config: ConfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Rollout restart a deployment (the restartedAt patch kubectl uses)."""
    from services.kube_actions import RESTART_DEPLOYMENT

    settings = settings_or_exit(_config(ctx, config))
    params = _kube_params(namespace or _default_namespace(settings, context), context)
    _run_action(ctx, config, RESTART_DEPLOYMENT, name, params, yes=yes, dry_run=dry_run)


def _default_namespace(settings: Resolved, context: str | None) -> str:
    from services.kube import KubeService

    return KubeService(settings.kubeconfig, settings.kube_context).where(context)[1]


@cli.command("alerts")
def alerts_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of alerts.")] = False,
) -> None:
    """Firing and pending alerts from Prometheus, Alertmanager (silenced, inhibited) and the
    runbooks' own conditions. A source that fails is named on stderr; the others still print."""
    import json

    from services.errors import NotConfigured, ServiceError

    settings = settings_or_exit(_config(ctx, config))

    async def work(services):
        alerts = services.alerts
        sources = {"prometheus": alerts.prometheus_alerts, "alertmanager": alerts.alertmanager_alerts,
                   "console": alerts.business_alerts}  # fmt: skip
        found, failed, tried = [], [], 0
        for name, fetch in sources.items():
            try:
                tried += 1
                found += await fetch()
            except NotConfigured:
                tried -= 1
            except ServiceError as exc:
                failed.append(f"{name}: {exc}")
        return found, failed, tried

    found, failed, tried = _with_services(settings, work)
    for line in failed:
        typer.echo(f"opsconsole: {line}", err=True)
    if as_json:
        typer.echo(json.dumps([a.as_json() for a in found], indent=2))
    else:
        for a in found:
            since = a.since.strftime("%Y-%m-%d %H:%M") if a.since else "—"
            silenced = " (silenced)" if a.silenced_by else ""
            typer.echo(f"{a.source:<12} {a.state:<10} {a.severity:<9} {a.name:<28} {since}{silenced}")
        typer.echo(f"{len(found)} alerts")
    if tried and len(failed) == tried:
        raise typer.Exit(1)


@cli.command("incidents")
def incidents_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of incidents.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
) -> None:
    """Incidents, newest first, with their response clock."""
    import json
    from datetime import UTC, datetime

    from services.incidents import response_clock

    settings = settings_or_exit(_config(ctx, config))
    incidents = _with_services(settings, lambda s: s.incidents.recent(limit))
    now = datetime.now(UTC)
    if as_json:
        rows = [{**i.as_json(), "ref": i.ref, "response": response_clock(i, now).text} for i in incidents]
        typer.echo(json.dumps(rows, indent=2))
        return
    for i in incidents:
        typer.echo(f"{i.ref:<8} {i.severity} {i.status:<13} {response_clock(i, now).text:<24} {i.title}")
    typer.echo(f"{len(incidents)} incidents")


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
