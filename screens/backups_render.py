"""What the backups area draws, as pure functions of BackupsService's dataclasses: a list
row, the RPO and restore-drill lines, the selected backup's detail (manifest, verification,
drill evidence) and a running action's progress. Every value read from the bucket, the
catalogue or a manifest is shown inert (screens.shown), never read as markup."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from screens.shown import fill, plain
from screens.widgets import short_age
from services.backup_model import DRILL_EVERY, BackupEntry, BackupsStatus
from services.polling import format_age
from services.text import human_bytes

COLUMNS = ("backup", "finished  age", "state", "stored", "plaintext", "kind", "by")
STATE_STYLE = {"drilled": "bold green", "verified": "green", "unverified": "yellow", "DAMAGED": "bold red"}
SHOWN_MISMATCHES = 8


def finished_cell(at: datetime, now: datetime) -> str:
    """'01-07 02:00 5h' in UTC (the year instead of the time once it is not this season's)."""
    stamp = f"{at:%m-%d %H:%M}" if now - at < timedelta(days=300) else f"{at:%Y-%m-%d}"
    return f"{stamp} {short_age(at, now)}"


def state_cell(entry: BackupEntry, now: datetime) -> Text:
    """How far the backup is known to be good: 'drilled 2d', 'verified 5h' (that long ago),
    'unverified', 'DAMAGED'; 'unknown' for ours listed from the bucket while the catalogue
    is away."""
    if not entry.legacy and not entry.catalogued:
        return Text("unknown", style="dim")
    state = entry.state()
    when = {"drilled": entry.drilled_at, "verified": entry.verified_at}.get(state)
    shown = f"{state} {short_age(when, now)}" if when else state
    return Text(shown, style=STATE_STYLE.get(state, ""))


def backup_row(entry: BackupEntry, now: datetime) -> tuple:
    """One list row: id, finished (age), state, stored and plaintext size, kind, operator."""
    plaintext = "—" if entry.plaintext_bytes is None else human_bytes(entry.plaintext_bytes)
    # A legacy file name without '.sql.gz' (the kind column and the detail say what it is):
    # the id, age, state and size columns fit 80 columns.
    shown = entry.id.removesuffix(".sql.gz") if entry.legacy else entry.id
    return (
        plain(shown, "bold" if entry.state() == "DAMAGED" else ""),
        finished_cell(entry.finished_at, now),
        state_cell(entry, now),
        human_bytes(entry.stored_bytes),
        plaintext,
        plain(entry.kind, "dim" if entry.legacy else ""),
        plain(entry.operator or "—", limit=24),
    )


def list_title(status: BackupsStatus) -> str:
    """The list panel's title: how many backups, how much they take in the bucket."""
    n, stored = len(status.entries), human_bytes(sum(e.stored_bytes for e in status.entries))
    return f"Backups, newest first · {n} · {stored} stored" if n else "Backups · none in the bucket"


def rpo_text(status: BackupsStatus) -> Text:
    """'RPO    ok: last good backup 5h ago, <id>', red when it is older than 24 h or missing."""
    line = Text("RPO    ", style="bold")
    good = status.last_good
    if good is None:
        return line.append("BREACHED: no good backup at all (target 24 h)", style="bold red")
    age = short_age(good.finished_at, status.now)
    if status.rpo_ok:
        line.append("ok", style="bold green")
        return line.append_text(fill("[green]: last good backup {} ago, {}[/]", age, good.id))
    line.append("BREACHED", style="bold red")
    return line.append_text(fill("[bold red]: last good backup {} ago (over 24 h), {}[/]", age, good.id))


def drill_text(status: BackupsStatus) -> Text:
    """'Drill  ok: passed 3d ago on <id>, next due in 27d', red once a month has gone by."""
    line = Text("Drill  ", style="bold")
    last = status.last_drill
    if last is None or last.drilled_at is None:
        return line.append("OVERDUE: never done (a restore drill is due monthly)", style="bold red")
    age = short_age(last.drilled_at, status.now)
    if status.drill_due:
        line.append("OVERDUE", style="bold red")
        return line.append_text(fill("[bold red]: last passed {} ago (monthly), on {}[/]", age, last.id))
    due = short_age(status.now - (DRILL_EVERY - (status.now - last.drilled_at)), status.now)
    line.append("ok", style="bold green")
    return line.append_text(fill("[green]: passed {} ago on {}, next due in {}[/]", age, last.id, due))


def status_text(status: BackupsStatus, problems: list[str] | tuple[str, ...] = ()) -> Text:
    """The area's status lines: the RPO (red past 24 h), the monthly restore drill (red when
    due), then what is wrong: the catalogue unreadable, what stops a backup from running."""
    lines = [rpo_text(status), drill_text(status)]
    if status.catalog_problem:
        said = "[yellow]catalogue unreadable: {} (our backups listed from the bucket, state unknown)[/]"
        lines.append(fill(said, status.catalog_problem, limit=300))
    if problems:
        lines.append(fill("[bold red]a backup cannot run: {}[/]", "; ".join(problems), limit=300))
    return Text("\n").join(lines)


def failing_text(error: str, age: float | None, not_configured: bool = False) -> Text:
    """What the status lines say when the list cannot be read: not configured (dim), or the
    error and the age of the list still shown."""
    if not_configured:
        return fill("[dim]{}: no backups to list[/]", error, limit=300)
    held = "no list yet" if age is None else f"the list below is {format_age(age)} old"
    return Text("\n").join([
        fill("[bold red]RPO    unknown: the bucket cannot be listed[/]"),
        fill("[bold red]{}[/] [dim]({}; tried again with every poll)[/]", error, held, limit=300),
    ])  # fmt: skip


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?" if value is None else str(value)


def _bytes(value: Any) -> str:
    return human_bytes(value) if isinstance(value, int | float) else "?"


def _seconds(values: Mapping[str, Any]) -> str:
    return " · ".join(f"{k} {v:.1f} s" for k, v in values.items() if isinstance(v, int | float)) or "—"


Row = tuple[str, Text]  # (label, value) of the detail pane


def _when(at: datetime, now: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC ({short_age(at, now)} ago)"


def manifest_rows(entry: BackupEntry) -> list[Row]:
    """The manifest's summary: sizes, sha256 prefix, versions, tables, audit head."""
    m = entry.manifest
    if entry.legacy:
        return [
            (
                "manifest",
                fill("[dim]none: a pg_dump | gzip of the AGIS cron script; it restores with psql[/]"),
            )
        ]
    if not m:
        return [("manifest", fill("[dim]not read (the catalogue is unavailable)[/]"))]
    tables = m.get("tables") if isinstance(m.get("tables"), dict) else {}
    rows = sum(v for v in tables.values() if isinstance(v, int))
    stored, plaintext = m.get("stored_bytes"), m.get("plaintext_bytes")
    ratio = f" ({plaintext / stored:.1f}x)" if isinstance(plaintext, int) and stored else ""
    chunks = (_num(m.get("chunks")), _bytes(m.get("chunk_size")), _bytes(m.get("compressed_bytes")))
    server = str(m.get("server_version") or "?").split(" ")[0]  # '16.4 (Debian 16.4-1)': the version
    return [
        ("sizes", fill("{} dumped → {} stored{}", _bytes(plaintext), _bytes(stored), ratio)),
        ("chunks", fill("{} of ≤ {}, {} after zstd", *chunks)),
        ("sha256", fill("{}… (plaintext)", str(m.get("plaintext_sha256") or "?")[:16])),
        ("versions", fill("pg_dump {} · server {}", m.get("pg_dump_version") or "?", server)),
        ("tables", fill("{} tables, {} rows", _num(len(tables)), _num(rows))),
        ("audit head", fill("{}", str(m.get("audit_head") or "—")[:16])),
        ("took", fill("{} s · key {}", _num(m.get("seconds")), str(m.get("key_id") or "?")[:12])),
    ]


def verify_rows(entry: BackupEntry, now: datetime) -> list[Row]:
    """The latest verification: when, and what it read, or the damage it found."""
    v = entry.verify
    if entry.legacy:
        return [("Verify", fill("[dim]not recorded for a legacy backup (V reads its gzip stream)[/]"))]
    drilled = entry.drill.get("verify") if entry.drill and isinstance(entry.drill.get("verify"), dict) else {}
    if (v is None or entry.verified_at is None) and drilled.get("ok") and entry.drilled_at:
        return [("Verify", fill("[green]ok[/] {}", _when(entry.drilled_at, now))),
                ("", fill("every chunk and the sha256, by the restore drill"))]  # fmt: skip
    if v is None or entry.verified_at is None:
        return [("Verify", fill("[yellow]never verified (V verifies)[/]"))]
    when = _when(entry.verified_at, now)
    if not v.get("ok"):
        return [("Verify", fill("[bold red]DAMAGED[/] {}", when)),
                ("", fill("[red]{}[/]", v.get("problem") or "?", limit=300))]  # fmt: skip
    what = (_num(v.get("chunks")), _bytes(v.get("plaintext_bytes")), _num(v.get("seconds")))
    return [("Verify", fill("[green]ok[/] {}", when)),
            ("", fill("{} chunks, {}, sha256 matches the manifest, {} s", *what))]  # fmt: skip


def drill_rows(entry: BackupEntry, now: datetime) -> list[Row]:
    """The restore drill's evidence: row counts against the manifest (each mismatch as
    expected vs found), indexes checked by amcheck, the smoke query, durations."""
    d = entry.drill
    if entry.legacy:
        return [("Drill", fill("[dim]not recorded for a legacy backup (L restores it and checks)[/]"))]
    if d is None or entry.drilled_at is None:
        return [("Drill", fill("[yellow]never drilled (L drills)[/]"))]
    verdict = fill("[green]passed[/]") if d.get("ok") else fill("[bold red]FAILED[/]")
    rows = [("Drill", fill("{} {}", verdict, _when(entry.drilled_at, now))),
            ("into", fill("{}", d.get("database") or "?"))]  # fmt: skip
    checked = d.get("verify") if isinstance(d.get("verify"), dict) else {}
    evidence = d.get("evidence") if isinstance(d.get("evidence"), dict) else None
    if evidence is None:
        problem = checked.get("problem") or "?"
        return [*rows, ("", fill("[bold red]damaged, nothing restored: {}[/]", problem, limit=300))]
    tables = evidence.get("tables") if isinstance(evidence.get("tables"), dict) else {}
    mismatched = [t for t in evidence.get("mismatched") or [] if isinstance(t, str)]
    found = sum(v.get("found") or 0 for v in tables.values() if isinstance(v, dict))
    style = "green" if not mismatched else "bold red"
    counts = (_num(len(tables) - len(mismatched)), _num(len(tables)), _num(found))
    rows.append(("tables", fill(f"[{style}]{{}} of {{}} as in the manifest[/] ({{}} rows)", *counts)))
    for table in mismatched[:SHOWN_MISMATCHES]:
        v = tables.get(table) if isinstance(tables.get(table), dict) else {}
        rows.append(("", fill("[red]{}: expected {}, found {}[/]", table, _num(v.get("expected")),
                              _num(v.get("found")))))  # fmt: skip
    if len(mismatched) > SHOWN_MISMATCHES:
        rows.append(("", fill("[red]… and {} more[/]", len(mismatched) - SHOWN_MISMATCHES)))
    amcheck = evidence.get("amcheck") or "?"
    failures = [f for f in evidence.get("index_failures") or [] if isinstance(f, str)]
    ok = amcheck == "ok" and not failures
    said = "ok" if ok else (failures or [amcheck])[0]
    template = f"{{}} checked by amcheck: [{'green' if ok else 'bold red'}]{{}}[/]"
    rows.append(("indexes", fill(template, _num(evidence.get("indexes_checked")), said, limit=300)))
    query = evidence.get("smoke_query") or "SELECT COUNT(*) FROM users"
    rows.append(("smoke", fill("{} = {}", query, evidence.get("smoke_error") or _num(evidence.get("smoke")))))
    times = d.get("seconds") if isinstance(d.get("seconds"), dict) else {}
    rows.append(("took", fill("{}", _seconds(times))))
    return rows


def about_rows(entry: BackupEntry, now: datetime, bucket: str | None = None) -> list[Row]:
    """The detail pane's first half: the backup, where it is, its manifest."""
    where = f"s3://{bucket}/{entry.key}" if bucket else entry.key
    finished = (f"{entry.finished_at:%Y-%m-%d %H:%M:%S}", short_age(entry.finished_at, now))
    return [
        ("backup", fill("[b]{}[/b]  {}", entry.id, state_cell(entry, now))),
        ("finished", fill("{} UTC ({} ago)", *finished)),
        ("by", fill("{} · database {} · {}", entry.operator or "—", entry.database or "—", entry.kind)),
        ("object", fill("{}", where, limit=300)),
        *manifest_rows(entry),
    ]


def checks_rows(entry: BackupEntry, now: datetime) -> list[Row]:
    """The detail pane's second half: the latest verification and restore drill."""
    return [*verify_rows(entry, now), ("", Text("")), *drill_rows(entry, now)]


def grid(rows: list[Row]) -> Table:
    """Rows as a label column and a value column; a long value wraps under its own column."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, min_width=10)
    table.add_column(ratio=1, overflow="fold")
    for label, value in rows:
        table.add_row(Text(label, style="bold" if label[:1].isupper() else "dim"), value)
    return table


def rows_text(rows: list[Row]) -> str:
    """The rows as plain lines, 'label  value' (the headless form, and for tests)."""
    return "\n".join(f"{label:<10} {value.plain}".rstrip() for label, value in rows)
