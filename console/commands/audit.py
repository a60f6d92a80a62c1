"""`opsconsole audit ...`: the audit trail from the command line. `verify` checks the hash
chain and the rows remembered outside the database (this machine's anchors, and a head
the operator kept), and prints the head to keep for next time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from console.commands.common import ConfigOption, echo, fail, settings_or_exit, with_services

if TYPE_CHECKING:
    from services.audit import ChainReport

audit_cli = typer.Typer(help="The audit trail.", no_args_is_help=True)


def report_lines(report: ChainReport) -> list[str]:
    """What `audit verify` prints for an intact log (a broken one is one error line)."""
    lines = [f"audit chain intact: {report.rows:,} rows in {report.database}"]
    if report.anchors:
        newest = report.newest_anchor
        lines.append(f"{report.anchors:,} anchors kept on this machine checked (the newest: row {newest})")
    else:
        lines.append(
            "no anchors for this database on this machine: a cut tail or a truncation cannot be "
            "detected from here (keep the head below and pass it with --head next time)"
        )
    if report.head_checked:
        lines.append("the head you kept is there, unchanged")
    if report.head is not None:
        lines.append(f"head: row {report.head.row_id} hash {report.head.row_hash} — keep it to check later")
    return lines


@audit_cli.command("verify")
def verify(
    ctx: typer.Context,
    config: ConfigOption = None,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            metavar="ID:HASH",
            help="A head printed by an earlier verify: that row must still be there, unchanged.",
        ),
    ] = None,
    anchors: Annotated[
        Path | None,
        typer.Option(
            "--anchors",
            help="The anchor file to check against (default: this user's, where the console writes).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check the audit log's hash chain and the rows remembered outside the database; names
    the first broken or missing row. Exit 1 if broken."""
    from services.audit import AuditService
    from services.audit_anchor import Head

    kept = None
    if head is not None:
        try:
            kept = Head.parse(head)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--head") from None
    settings = settings_or_exit(ctx, config)
    report = with_services(settings, lambda s: AuditService(s.postgres, anchors).verify(head=kept))
    if report.ok:
        for line in report_lines(report):
            echo(line)
        return
    raise fail([f"audit chain broken at row {report.broken_id}: {report.reason}"], 1)
