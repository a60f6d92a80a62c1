"""`opsconsole orders`: the orders screen's lists, and its actions as aliases of `act`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

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
from services.text import inert

orders_cli = typer.Typer(help="Orders: the headless twin of the orders screen.", no_args_is_help=False)


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
    if sum([stuck, errors, search is not None]) > 1:
        raise fail(["orders: choose one of --stuck, --errors, --search"], 2)
    view = "stuck" if stuck else "errors" if errors else "search" if search is not None else "recent"
    settings = settings_or_exit(ctx, config)
    page = with_services(settings, lambda s: s.orders.page(view, query=search or "", limit=limit))
    if as_json:
        typer.echo(json.dumps([o.as_json() for o in page.orders], indent=2))  # JSON escapes controls
        return
    for o in page.orders:
        waited = f"{o.minutes_waiting:6.0f} min" if o.minutes_waiting else ""
        # What a customer typed is cut for the listing (the whole value is in --json).
        name, email = inert(o.server_name, limit=40), inert(o.email, limit=48)
        echo(f"{o.id}  {o.status:<12} {name:<28} {email:<32} {waited}")
    echo(f"{len(page.orders)} orders ({view})" + (", more not shown" if page.more else ""))


def _order_alias(action_name: str, doc: str, *, refund: bool = False):
    """`orders retry|sync-panel|cancel ORDER_ID`: the action through `act`."""

    def command(
        ctx: typer.Context,
        order_id: Annotated[str, typer.Argument(help="The order.")],
        config: ConfigOption = None,
        yes: YesOption = False,
        dry_run: DryRunOption = False,
        confirm: ConfirmOption = None,
        refund_amount: Annotated[
            str | None, typer.Option("--refund", help="Refund: 'all' or an amount like 12.50 (cancel only).")
        ] = None,
        delete_server: Annotated[
            bool, typer.Option("--delete-server", help="Delete the panel server too (cancel only).")
        ] = False,
    ) -> None:
        from services.actions import ALL_ACTIONS
        from services.orders import parse_uuid

        if parse_uuid(order_id) is None:
            raise fail([f"orders: {order_id!r} is not an order id (a uuid)"], 2)
        raw: dict[str, str] = {}
        if refund:
            raw = {"refund": refund_amount or "", "delete_server": "yes" if delete_server else "no"}
        elif refund_amount is not None or delete_server:
            raise fail(["--refund and --delete-server are for `orders cancel`"], 2)
        run_action(ctx, ALL_ACTIONS[action_name], order_id, raw, config=config, yes=yes, dry_run=dry_run,
                   confirm=confirm)  # fmt: skip

    command.__doc__ = doc
    return command


orders_cli.command("retry")(
    _order_alias(
        "retry_provisioning", "Retry provisioning of one order (the same action as R in the console)."
    )
)
orders_cli.command("sync-panel")(
    _order_alias("sync_panel_account", "Create the panel account of the order's customer (P in the console).")
)
orders_cli.command("cancel")(
    _order_alias(
        "cancel_refund",
        "Cancel an order, optionally refund and delete its server (X; typed "
        "confirmation: --confirm ORDER_ID).",
        refund=True,
    )
)


def register(cli: typer.Typer) -> None:
    cli.add_typer(orders_cli, name="orders")
