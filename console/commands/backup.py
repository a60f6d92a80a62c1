"""`opsconsole backup run|list|verify|restore|prune|schedule`: the Backups area headless,
every change through the same runbook actions as the screen's keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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

backup_cli = typer.Typer(
    help="Database backups in S3: run, list, verify (and restore drills), restore, prune.",
    no_args_is_help=True,
)

IntoOption = Annotated[
    str | None,
    typer.Option("--into", help="DSN of the database to restore into (never shown: its password is masked)."),
]


def _action(name: str):
    from services.actions import ALL_ACTIONS

    return ALL_ACTIONS[name]


def _size(n: int | None) -> str:
    from services.text import human_bytes

    return "-" if n is None else human_bytes(n)


def entry_json(entry, now: datetime) -> dict[str, Any]:
    """One backup as `backup list --json` prints it."""
    return {
        "id": entry.id, "kind": entry.kind, "key": entry.key, "database": entry.database or None,
        "finished_at": entry.finished_at.isoformat(),
        "age_hours": round(entry.age(now).total_seconds() / 3600, 1),
        "stored_bytes": entry.stored_bytes, "plaintext_bytes": entry.plaintext_bytes,
        "operator": entry.operator or None,
        "state": entry.state(), "catalogued": entry.catalogued,
        "verified_at": entry.verified_at.isoformat() if entry.verified_at else None, "verify": entry.verify,
        "drilled_at": entry.drilled_at.isoformat() if entry.drilled_at else None, "drill": entry.drill,
    }  # fmt: skip


@backup_cli.command("list")
def backup_list(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every backup, ours and the legacy script's, newest first, with the RPO and drill status."""
    settings = settings_or_exit(ctx, config)
    status = with_services(settings, lambda s: s.backups.status())
    now = status.now
    if as_json:
        typer.echo(json.dumps({
            "backups": [entry_json(e, now) for e in status.entries],
            "rpo": {"ok": status.rpo_ok, "line": status.rpo_line,
                    "last_good": status.last_good.id if status.last_good else None},
            "drill": {"due": status.drill_due, "line": status.drill_line},
            "catalog_problem": status.catalog_problem,
        }, indent=2))  # fmt: skip
        return
    if status.catalog_problem:
        echo(f"! the catalogue cannot be read ({status.catalog_problem}): ours listed from the bucket")
    echo(f"{'id':<36} {'kind':<10} {'finished (UTC)':<17} {'age':>9} {'stored':>10} {'dumped':>10}  state")
    for e in status.entries:
        age = e.age(now)
        age_text = f"{age.days} d" if age.days else f"{int(age.total_seconds() // 3600)} h"
        echo(f"{e.id[:36]:<36} {e.kind:<10} {e.finished_at:%Y-%m-%d %H:%M} {age_text:>9} "
             f"{_size(e.stored_bytes):>10} {_size(e.plaintext_bytes):>10}  {e.state()}")  # fmt: skip
    if not status.entries:
        echo("(no backups)")
    echo("")
    echo(("ok  " if status.rpo_ok else "ALERT ") + status.rpo_line)
    echo(("due " if status.drill_due else "ok  ") + status.drill_line)


@backup_cli.command("run")
def backup_run(
    ctx: typer.Context,
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Back up the database now (pg_dump, zstd, AES-256-GCM, S3). Exits non-zero on any failure."""
    run_action(ctx, _action("backup_run"), "", {}, config=config, yes=yes, dry_run=dry_run, as_json=as_json)


def _latest(ctx: typer.Context, config) -> str:
    settings = settings_or_exit(ctx, config)
    return with_services(settings, lambda s: s.backups.latest()).id


@backup_cli.command("verify")
def backup_verify(
    ctx: typer.Context,
    backup_id: Annotated[str | None, typer.Argument(help="The backup's id (or a legacy file name).")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The newest backup.")] = False,
    restore: Annotated[
        bool, typer.Option("--restore", help="A restore drill: restore into a scratch database and check it.")
    ] = False,
    into: IntoOption = None,
    config: ConfigOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Check every chunk and the sha256 of a backup (nothing written to disk); --restore drills it."""
    if (backup_id is None) == (not latest):
        raise fail(["give a backup id or --latest (one of them)"], 2)
    if into and not restore:
        raise fail(["--into is for a restore drill: add --restore"], 2)
    target = _latest(ctx, config) if latest else str(backup_id)
    name = "drill_backup" if restore else "verify_backup"
    raw = {"into": into} if into else {}
    run_action(ctx, _action(name), target, raw, config=config, yes=yes, dry_run=dry_run, as_json=as_json)


@backup_cli.command("restore")
def backup_restore(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(help="The backup's id (or a legacy file name).")],
    into: IntoOption = None,
    replace_live: Annotated[
        bool,
        typer.Option("--replace-live", help="Restore over the live database: walks the corruption runbook."),
    ] = False,
    bot: Annotated[str, typer.Option("--bot", help="The bot's deployment, scaled to 0 first.")] = "agis-bot",
    bot_replicas: Annotated[
        int | None,
        typer.Option("--bot-replicas", min=1, help="Replicas to scale the bot back to (default: as now)."),
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="The bot's namespace.")] = None,
    config: ConfigOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into a database that is not the live one (--confirm DATABASE_NAME)."""
    settings = settings_or_exit(ctx, config)
    if replace_live:
        into = into or settings.plain("restore_dsn")
    if not into:
        raise fail(["give --into DSN: the database to restore into"], 2)
    if not replace_live:
        run_action(ctx, _action("restore_backup"), backup_id, {"into": into}, config=config, dry_run=dry_run,
                   confirm=confirm, as_json=as_json)  # fmt: skip
        return
    _replace_live(ctx, config, backup_id, into, bot, namespace, bot_replicas, dry_run)


def _replace_live(
    ctx,
    config,
    backup_id: str,
    into: str,
    bot: str,
    namespace: str | None,
    bot_replicas: int | None,
    dry_run: bool,
) -> None:
    """The AGIS manual's database-corruption runbook, one confirmed and audited step at a time."""
    from services.dsn import describe_dsn

    settings = settings_or_exit(ctx, config)

    async def replicas(services) -> int:
        ns = namespace or services.kube.where(None)[1]
        found = await services.kube.read_deployment(ns, bot, None)
        if found is None:
            raise fail([f"there is no deployment {bot} in namespace {ns}: give --bot / --namespace"], 2)
        return int(found.desired)

    now = with_services(settings, replicas)
    after = bot_replicas or now or 1
    database = describe_dsn(into).rpartition("/")[2]
    echo("Database corruption runbook (AGIS manual), each step confirmed and audited:")
    for line in (
        f"1. scale deployment {bot} to 0 (the bot stops writing)"
        + (" -- already at 0: skipped" if now == 0 else ""),
        f"2. restore backup {backup_id} over the live database {database}",
        "3. verify: row counts of every table against the manifest, amcheck, SELECT COUNT(*) FROM users",
        f"4. scale deployment {bot} back to {after}",
    ):
        echo("  " + line)
    where = {**({"namespace": namespace} if namespace else {})}
    steps = [
        (1, "scale_deployment", bot, {**where, "replicas": "0"}, bot),
        (2, "restore_backup", backup_id, {"into": into, "replace_live": "yes"}, database),
        (4, "scale_deployment", bot, {**where, "replicas": str(after)}, None),
    ]
    for number, name, target, raw, word in steps[1:] if now == 0 else steps:
        echo(f"\n— step {number}")
        typed = None
        if word and not dry_run:
            typed = typer.prompt(f"type {word} to confirm this step (anything else stops here)", default="")
            if typed.strip() != word:
                raise fail([f"stopped before step {number}: not confirmed"], 1)
        try:
            run_action(
                ctx, _action(name), target, raw, config=config, yes=True, dry_run=dry_run, confirm=typed
            )
        except typer.Exit as done:
            if done.exit_code:
                raise
        if number == 2:
            echo("— step 3: verified by the restore's own checks above (row counts, amcheck, smoke query)")


@backup_cli.command("prune")
def backup_prune(
    ctx: typer.Context,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days",
            min=1,
            max=36500,
            help="Keep this many days (default: the setting, 30; at most 100 years).",
        ),
    ] = None,
    config: ConfigOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Delete backups past the retention from the bucket (the newest verified is always kept);
    --dry-run lists what would go. Destructive: --confirm BUCKET."""
    settings = settings_or_exit(ctx, config)
    days = retention_days or settings.backup_retention_days
    before = (datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)).isoformat()
    run_action(ctx, _action("prune_backups"), settings.s3_bucket or "", {"before": before}, config=config,
               dry_run=dry_run, confirm=confirm, as_json=as_json)  # fmt: skip


@backup_cli.command("schedule")
def backup_schedule(
    image: Annotated[
        str, typer.Option("--image", help="The image holding opsconsole.")
    ] = "opsconsole:latest",
) -> None:
    """Print a ready crontab line and a Kubernetes CronJob for the nightly backup."""
    echo("# crontab (as the operator the backups are recorded under), 03:00 UTC nightly:")
    echo('0 3 * * * opsconsole backup run --yes --json >> "$HOME/opsconsole-backup.log" 2>&1')
    echo("")
    echo("# Kubernetes CronJob (the settings from a Secret named opsconsole-env):")
    echo(f"""apiVersion: batch/v1
kind: CronJob
metadata:
  name: opsconsole-backup
spec:
  schedule: "0 3 * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: backup
              image: {image}
              args: ["backup", "run", "--yes", "--json"]
              envFrom:
                - secretRef:
                    name: opsconsole-env""")


def register(cli: typer.Typer) -> None:
    cli.add_typer(backup_cli, name="backup")
