"""What a backup is, as the list shows it: our objects (opsconsole/<database>/<id>.opsbak
with a manifest beside each) and the legacy `pg_dump | gzip` objects of the AGIS manual's cron
script; the RPO and monthly-drill status of a list. Pure: no I/O, so a screen may import it."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.text import human_age as _age

OURS_PREFIX = "opsconsole/"
LEGACY_PREFIX = "database/"
LEGACY_NAME = re.compile(r"^database/agis_backup_(\d{8})_(\d{6})\.sql\.gz$")
MANIFEST_SUFFIX = ".manifest.json"
OBJECT_SUFFIX = ".opsbak"
RPO = timedelta(hours=24)  # the AGIS manual's recovery point objective
DRILL_EVERY = timedelta(days=30)  # "monthly restore verification"
FORMAT = "opsconsole-backup/1"


@dataclass(frozen=True)
class BackupEntry:
    """One backup, ours or legacy, as the list shows it."""

    id: str
    kind: str  # "opsconsole" | "legacy"
    key: str
    finished_at: datetime
    stored_bytes: int
    database: str = ""
    operator: str = ""
    plaintext_bytes: int | None = None
    catalogued: bool = False
    verified_at: datetime | None = None
    verify: dict[str, Any] | None = None
    drilled_at: datetime | None = None
    drill: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def legacy(self) -> bool:
        return self.kind == "legacy"

    @property
    def verify_ok(self) -> bool | None:
        return None if self.verify is None else bool(self.verify.get("ok"))

    @property
    def drill_ok(self) -> bool | None:
        return None if self.drill is None else bool(self.drill.get("ok"))

    @property
    def good(self) -> bool:
        """Usable for the RPO: complete, and not found damaged by a verification or drill."""
        return self.verify_ok is not False and self.drill_ok is not False

    def age(self, now: datetime) -> timedelta:
        return now - self.finished_at

    def state(self) -> str:
        """One word for the list: how far it is known to be good."""
        if self.verify_ok is False or self.drill_ok is False:
            return "DAMAGED"
        if self.drill_ok:
            return "drilled"
        if self.verify_ok:
            return "verified"
        return "unverified"


@dataclass(frozen=True)
class BackupsStatus:
    """The list and what it means for the RPO and the monthly drill."""

    entries: tuple[BackupEntry, ...]
    now: datetime
    last_good: BackupEntry | None
    last_drill: BackupEntry | None
    catalog_problem: str | None = None  # the catalogue could not be read (list from the bucket)

    @property
    def rpo_ok(self) -> bool:
        return self.last_good is not None and self.last_good.age(self.now) <= RPO

    @property
    def rpo_line(self) -> str:
        if self.last_good is None:
            return "no good backup at all: RPO 24 h breached"
        age = _age(self.last_good.age(self.now))
        if self.rpo_ok:
            return f"last good backup {age} ago ({self.last_good.id}): within the 24 h RPO"
        return f"last good backup {age} ago ({self.last_good.id}): older than the 24 h RPO"

    @property
    def drill_due(self) -> bool:
        return self.last_drill is None or self.now - (self.last_drill.drilled_at or self.now) > DRILL_EVERY

    @property
    def drill_line(self) -> str:
        if self.last_drill is None or self.last_drill.drilled_at is None:
            return "restore drill: never done (monthly): overdue"
        age = self.now - self.last_drill.drilled_at
        state = "overdue" if age > DRILL_EVERY else f"next due in {_age(DRILL_EVERY - age)}"
        return f"restore drill: last passed {_age(age)} ago on {self.last_drill.id}: {state}"


def new_backup_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def object_key(database: str, backup_id: str) -> str:
    return f"{OURS_PREFIX}{database}/{backup_id}{OBJECT_SUFFIX}"


def drill_database(backup_id: str) -> str:
    """The scratch database a drill of `backup_id` restores into."""
    return "opsconsole_drill_" + re.sub(r"[^a-z0-9]", "_", backup_id.lower())[:40]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def entry_from_row(row) -> BackupEntry:
    return BackupEntry(
        id=row["id"], kind="opsconsole", key=row["object_key"], finished_at=row["finished_at"],
        stored_bytes=int(row["stored_bytes"]), database=row["database"], operator=row["operator"],
        plaintext_bytes=int(row["plaintext_bytes"]), catalogued=True, verified_at=row["verified_at"],
        verify=_json(row["verify"]), drilled_at=row["drilled_at"], drill=_json(row["drill"]),
        manifest=_json(row["manifest"]),
    )  # fmt: skip


def legacy_entry(key: str, size: int) -> BackupEntry | None:
    """A legacy object by its name (the script's `date +%Y%m%d_%H%M%S`, taken as UTC)."""
    found = LEGACY_NAME.match(key)
    if not found:
        return None
    finished = datetime.strptime(found.group(1) + found.group(2), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    name = key.rpartition("/")[2]
    return BackupEntry(id=name, kind="legacy", key=key, finished_at=finished, stored_bytes=size)
