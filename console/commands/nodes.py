"""`opsconsole nodes` and `opsconsole kube`: the nodes screen's capacity and cluster views,
and their actions as aliases of `act`."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from console.commands.common import (
    ConfigOption,
    ConfirmOption,
    DryRunOption,
    YesOption,
    echo,
    fail,
    run_action,
    settings_or_exit,
    with_services,
)

nodes_cli = typer.Typer(help="Game nodes: capacity, forecast, enable and disable.", no_args_is_help=False)
kube_cli = typer.Typer(help="Kubernetes and Agones: summary, scale, restart.", no_args_is_help=False)


@nodes_cli.callback(invoke_without_command=True)
def nodes_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array, one object per node.")] = False,
) -> None:
    """Every game node's RAM and how many more servers of each plan fit on it."""
    if ctx.invoked_subcommand is not None:
        return
    from services.nodes import capacity_json

    settings = settings_or_exit(ctx, config)
    capacity = with_services(settings, lambda s: s.nodes.capacity())
    if as_json:
        typer.echo(json.dumps(capacity_json(capacity), indent=2))
        return
    echo(f"{'node':<16} {'state':<9} {'max':>6} {'headroom':>9} {'used':>6} {'free':>6} {'usage':>6}")
    for n in capacity.nodes:
        level = capacity.level(n)
        echo(f"{n.name:<16} {level:<9} {n.max_ram_gb:>4}GB {n.reserved_headroom_gb:>7}GB "
             f"{n.used_ram_gb:>4}GB {n.available_ram_gb:>4}GB {n.usage_pct:>5.0f}%")  # fmt: skip
    echo("\nmore servers that fit (enabled nodes):")
    for p in capacity.plans:
        echo(f"  {p.id:<24} {p.ram_gb:>3} GB  {capacity.total_fits(p.id):>4}")


def _node_alias(action_name: str, doc: str):
    def command(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="The node (ptero_nodes.name).")],
        config: ConfigOption = None,
        yes: YesOption = False,
        dry_run: DryRunOption = False,
    ) -> None:
        from services.actions import ALL_ACTIONS

        run_action(ctx, ALL_ACTIONS[action_name], name, {}, config=config, yes=yes, dry_run=dry_run)

    command.__doc__ = doc
    return command


nodes_cli.command("enable")(
    _node_alias("enable_node", "Put a game node back in the pool new orders are placed on.")
)
nodes_cli.command("disable")(
    _node_alias(
        "disable_node", "Take a game node out of the pool new orders go to (its servers keep running)."
    )
)

ContextOption = Annotated[
    str | None, typer.Option("--context", help="kubeconfig context (default: current).")
]
NamespaceOption = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
]


def _checked_where(context: str | None, namespace: str | None) -> dict[str, str]:
    """--context / -n as `act` inputs, validated (exit 2 with the reason)."""
    from services.kube_actions import parse_context, parse_name

    raw: dict[str, str] = {}
    try:
        if context is not None:
            raw["context"] = parse_context(context)
        if namespace is not None:
            raw["namespace"] = parse_name(namespace)
    except ValueError as exc:
        raise fail([f"kube: {exc}"], 2) from None
    return raw


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
    from services.kube_model import summary_json

    where = _checked_where(context, namespace)
    settings = settings_or_exit(ctx, config)

    async def read(services):
        namespace = where.get("namespace")
        if namespace and not await services.kube.namespace_exists(namespace, where.get("context")):
            return None
        return await services.kube.summary(where.get("context"), namespace)

    summary = with_services(settings, read)
    if summary is None:
        raise fail([f"kube: there is no namespace {where['namespace']!r} in the cluster"], 1)
    data = summary_json(summary)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    echo(f"context {data['context']} · namespace {data['namespace']}")
    for n in data["nodes"]:
        ready = "Ready" if n["ready"] else "NotReady"
        echo(f"  node {n['name']:<24} {ready:<9} cpu {n['cpu_pct']:>3.0f}% "
             f"mem {n['memory_pct']:>3.0f}% {' '.join(n['pressures'])}")  # fmt: skip
    for d in data["deployments"]:
        echo(f"  deployment {d['name']:<18} {d['ready']}/{d['desired']} ready")
    problems = [p for p in data["pods"] if p["reason"] or p["phase"] != "Running"]
    echo(f"  pods: {len(data['pods'])}, {len(problems)} not running well")
    for p in problems[:20]:
        echo(f"    {p['name']:<40} {p['reason'] or p['phase']:<20} restarts {p['restarts']}")
    for f in data["fleets"]:
        states = ", ".join(f"{n} {state}" for state, n in sorted(f["gameservers"].items()))
        echo(f"  fleet {f['name']:<18} desired {f['replicas']} · {states or 'no gameservers'}")
    for kind, error in data["errors"].items():
        echo(f"  {kind}: {error}", err=True)


NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d+)?")


class NegativeNumbersAreArguments(TyperCommand):
    """`kube scale X -5`: a negative number is the replicas argument (to be refused by its
    range), not an unknown option '-5'. Every other token parses as it always did, so an
    unknown --option is still refused as one."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if any(NEGATIVE_NUMBER.fullmatch(arg) for arg in args):
            placeholders = ["0" if NEGATIVE_NUMBER.fullmatch(arg) else arg for arg in args]
            self.make_parser(ctx).parse_args(args=placeholders)  # raises for a real unknown option
            ctx.ignore_unknown_options = True  # now only the negative numbers are unknown
        return super().parse_args(ctx, args)


def _checked_replicas(text: str) -> None:
    """Exit 2 naming the valid range unless `text` is a replica count; before any backend."""
    from services.kube_actions import parse_replicas

    try:
        parse_replicas(text)
    except ValueError as exc:
        message = str(exc) if len(str(exc)) <= 120 else str(exc)[:119] + "…"
        raise fail([f"kube scale: {message}"], 2) from None


@kube_cli.command("scale", cls=NegativeNumbersAreArguments)
def kube_scale(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment (or fleet, with --fleet).")],
    replicas: Annotated[str, typer.Argument(help="How many replicas.")],
    config: ConfigOption = None,
    context: ContextOption = None,
    namespace: NamespaceOption = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="Scale an Agones fleet.")] = False,
    confirm: ConfirmOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
) -> None:
    """Scale a deployment or an Agones fleet (to 0 only with --confirm NAME)."""
    from services.actions import ALL_ACTIONS

    _checked_replicas(replicas)
    action = ALL_ACTIONS["scale_fleet" if fleet else "scale_deployment"]
    raw = {**_checked_where(context, namespace), "replicas": replicas}
    run_action(ctx, action, name, raw, config=config, yes=yes, dry_run=dry_run, confirm=confirm)


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
    from services.actions import ALL_ACTIONS

    run_action(ctx, ALL_ACTIONS["rollout_restart"], name, _checked_where(context, namespace), config=config,
               yes=yes, dry_run=dry_run)  # fmt: skip


def register(cli: typer.Typer) -> None:
    cli.add_typer(nodes_cli, name="nodes")
    cli.add_typer(kube_cli, name="kube")
