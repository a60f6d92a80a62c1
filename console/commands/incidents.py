"""`opsconsole alerts` and `opsconsole incidents`: the incidents screen's two lists."""

from __future__ import annotations

from typing import Annotated

import typer

from console.commands.common import ConfigOption, echo, settings_or_exit, with_services


def alerts_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of alerts.")] = False,
) -> None:
    """Firing and pending alerts from Prometheus, Alertmanager (silenced, inhibited) and the
    runbooks' own conditions. A source that fails is named on stderr; the others still print."""
    import json

    from services.errors import NotConfigured, ServiceError

    settings = settings_or_exit(ctx, config)

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

    found, failed, tried = with_services(settings, work)
    for line in failed:
        echo(f"opsconsole: {line}", err=True)
    if as_json:
        typer.echo(json.dumps([a.as_json() for a in found], indent=2))
    else:
        for a in found:
            since = a.since.strftime("%Y-%m-%d %H:%M") if a.since else "—"
            silenced = " (silenced)" if a.silenced_by else ""
            echo(f"{a.source:<12} {a.state:<10} {a.severity:<9} {a.name:<28} {since}{silenced}")
        echo(f"{len(found)} alerts")
    if tried and len(failed) == tried:
        raise typer.Exit(1)


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

    settings = settings_or_exit(ctx, config)
    incidents = with_services(settings, lambda s: s.incidents.recent(limit))
    now = datetime.now(UTC)
    if as_json:
        rows = [{**i.as_json(), "ref": i.ref, "response": response_clock(i, now).text} for i in incidents]
        typer.echo(json.dumps(rows, indent=2))
        return
    for i in incidents:
        echo(f"{i.ref:<8} {i.severity} {i.status:<13} {response_clock(i, now).text:<24} {i.title}")
    echo(f"{len(incidents)} incidents")


def register(cli: typer.Typer) -> None:
    cli.command("alerts")(alerts_list)
    cli.command("incidents")(incidents_list)
