"""`opsconsole saves`: the "Server saves" tab headless: the saves bucket's usage by prefix
(the manual's `mc du`), the 20 newest objects (`mc ls --recursive | tail -20`), what is
past retention, and `--list`, the bucket a page at a time."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from console.commands.common import ConfigOption, JsonOption, echo, fail, settings_or_exit, with_services

if TYPE_CHECKING:
    from services.saves import SaveObject, SavesPage, SavesSummary


def saves(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    prefix: Annotated[str, typer.Option("--prefix", help="Only the objects under this prefix.")] = "",
    depth: Annotated[
        int, typer.Option("--depth", min=1, max=10, help="Usage by prefixes this many levels deep.")
    ] = 1,
    list_: Annotated[
        bool, typer.Option("--list", help="List the objects in key order, a page at a time, instead.")
    ] = False,
    after: Annotated[
        str | None, typer.Option("--after", help="With --list: the page after this key.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="With --list: the page size.")] = 100,
) -> None:
    """The server-saves bucket (OPSCONSOLE_SAVES_BUCKET): usage by prefix, the 20 newest
    objects and the ones past the retention (OPSCONSOLE_BACKUP_RETENTION_DAYS), from one
    pass over the listing; or, with --list, one page of objects. Exit 1 when S3 fails or
    the bucket is not configured."""
    if not list_ and after is not None:
        raise fail(["saves: --after goes with --list"], 2)
    settings = settings_or_exit(ctx, config)
    if list_:
        page = with_services(settings, lambda s: s.saves.page(prefix, after=after, limit=limit))
        if as_json:
            typer.echo(json.dumps(page.as_json(), indent=2))
        else:
            _print_page(page)
        return
    summary = with_services(settings, lambda s: s.saves.summary(prefix, depth=depth))
    if as_json:
        typer.echo(json.dumps(summary.as_json(), indent=2))
    else:
        _print_summary(summary)


def _when(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if when else "?"


def _object_line(item: SaveObject) -> str:
    from services.text import human_bytes as human_size

    return f"{_when(item.modified)}  {human_size(item.size):>10}  {item.key}"


def _print_summary(summary: SavesSummary) -> None:
    from services.text import human_bytes as human_size

    where = f"s3://{summary.bucket}/{summary.prefix}"
    total = f"{summary.objects:,} objects, {human_size(summary.bytes)}"
    echo(f"{where}  {total}  (listed {_when(summary.listed_at)} UTC)")
    echo(f"past retention ({summary.retention_days} days, before {_when(summary.cutoff)}): "
         f"{summary.expired_objects:,} objects, {human_size(summary.expired_bytes)}")  # fmt: skip
    echo(f"\n{'usage by prefix':<48} {'objects':>10} {'size':>11}")
    other = summary.other_prefixes
    for usage in (*summary.prefixes, *([other] if other else [])):
        echo(f"{usage.label:<48} {usage.objects:>10,} {human_size(usage.bytes):>11}")
    echo(f"\n{len(summary.recent)} most recent")
    for item in summary.recent:
        echo(_object_line(item))
    if summary.oldest_expired:
        echo("\noldest past retention")
        for item in summary.oldest_expired:
            echo(_object_line(item))


def _print_page(page: SavesPage) -> None:
    for item in page.objects:
        echo(_object_line(item))
    where = f"s3://{page.bucket}/{page.prefix}"
    if page.next_after is None:
        echo(f"{len(page.objects)} objects under {where}" + (" after that key" if page.after else ""))
        return
    more = ["opsconsole", "saves", "--list", "--after", page.next_after]
    if page.prefix:
        more[3:3] = ["--prefix", page.prefix]
    echo(f"{len(page.objects)} objects under {where}; the next page: {shlex.join(more)}")


def register(cli: typer.Typer) -> None:
    cli.command("saves")(saves)
