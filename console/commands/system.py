"""`opsconsole doctor`, `migrate` and `demo`: the console's own set-up and health."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from console.commands.common import ConfigOption, echo, fail, refuse_if_read_only, settings_or_exit


def doctor(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Check configuration and every backend: one line each; exit 0 only if all configured answer."""
    from console.wiring import build_services
    from services.doctor import run_doctor
    from services.text import mask_urls_in

    settings = settings_or_exit(ctx, config)
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
            echo(f"{name}  ok              {ping.version}, {ping.rtt_ms:.0f} ms{where}")
        elif finding.state == "not configured":
            echo(f"{name}  not configured  ({finding.reason})")
        else:
            echo(f"{name}  FAILING         {mask_urls_in(finding.reason or '', *settings.urls())}")
    failing = [f for f in findings if not f.passed]
    configured = [f for f in findings if f.state != "not configured"]
    echo(
        f"{len(configured) - len(failing)} of {len(configured)} configured backends answer"
        + (f"; failing: {', '.join(f.backend for f in failing)}" if failing else "")
    )
    raise typer.Exit(1 if failing else 0)


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
    """Apply pending migrations (the ops schema) as the schema's owner; safe to run twice or
    concurrently. Refused under --read-only."""
    from console.wiring import build_services
    from services.errors import ServiceError
    from services.migrations import migrate as apply

    settings = settings_or_exit(ctx, config)
    refuse_if_read_only(ctx, settings, "migrate")
    postgres = build_services(settings).postgres

    async def go():
        try:
            async with postgres.connection() as conn:
                return await apply(conn, with_reference=with_reference_schema, progress=echo)
        finally:
            await postgres.close()

    try:
        report = asyncio.run(go())
    except ServiceError as exc:
        raise fail([str(exc)], 1) from None
    echo(
        f"{postgres.where}: {len(report.applied)} applied, {report.already_applied} already applied"
        + (
            f", {len(report.skipped_reference)} reference-schema migrations skipped "
            "(pass --with-reference-schema on a demo or test database)"
            if report.skipped_reference
            else ""
        )
    )


def demo(
    ctx: typer.Context,
    reset: Annotated[
        bool, typer.Option("--reset", help="Throw the demo database away and reseed it.")
    ] = False,
    read_only: Annotated[bool, typer.Option("--read-only", help="Hide and block every action.")] = False,
    scenario: Annotated[
        str, typer.Option("--scenario", help="Which incident to rehearse (`opsconsole sandbox --list`).")
    ] = "crash-loop",
) -> None:
    """Open the console on the sandbox: a real PostgreSQL, migrated and seeded, the fakes and
    a scenario playing (`opsconsole sandbox --list`)."""
    from console.commands.common import globals_of
    from console.sandbox.demo import run_demo
    from console.sandbox.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        known = ", ".join(SCENARIOS)
        raise fail([f"no scenario {scenario!r}; known: {known} (sandbox --list describes them)"], 2)
    code = run_demo(reset=reset, read_only=read_only or globals_of(ctx).read_only, scenario=scenario)
    raise typer.Exit(code)


def register(cli: typer.Typer) -> None:
    cli.command()(doctor)
    cli.command()(migrate)
    cli.command()(demo)
