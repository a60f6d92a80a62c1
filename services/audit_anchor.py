"""The audit chain's anchors, kept outside the database: each audit row this console writes
is remembered in a local JSON-lines file as (database, row id, row hash), so `audit verify`
can tell a cut tail, a truncation or a recomputed chain from an intact log."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

ANCHOR_FILE = "audit-anchors.jsonl"


def default_anchor_path() -> Path:
    """Where a console keeps its anchors unless told otherwise: the user's state dir
    (~/.local/state/opsconsole on Linux, $XDG_STATE_HOME honoured)."""
    from platformdirs import user_state_path

    return user_state_path("opsconsole") / ANCHOR_FILE


@dataclass(frozen=True)
class Anchor:
    database: str  # DatabaseIdentity.key
    row_id: int
    row_hash: str
    at: str = ""  # when it was written (ISO, UTC); for people reading the file


@dataclass(frozen=True)
class DatabaseIdentity:
    """Which database an audit log lives in: the cluster's system identifier (new for every
    initdb, shared by its physical replicas) and the database's oid (new for every CREATE
    DATABASE, clones of a template included). Both survive reconnects and renames."""

    cluster: str
    oid: int
    name: str  # for messages only: a rename does not make it another database

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.oid}"


@dataclass(frozen=True)
class Head:
    """A row of the chain a person keeps ("ID:HASH") to check it later."""

    row_id: int
    row_hash: str

    def __str__(self) -> str:
        return f"{self.row_id}:{self.row_hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        """`ID:HASH` as verify prints it; raises ValueError saying what is wrong."""
        number, sep, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        if not sep or not number.strip().isdigit():
            raise ValueError(f"{text!r} is not ID:HASH (a row id, a colon, its sha256 in hex)")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{text!r}: the hash is not 64 hex digits")
        return cls(int(number), digest)


class AnchorStore:
    """An append-only JSON-lines file of anchors, one line per audit row written, for any
    number of databases. Appends are single writes to a file opened O_APPEND, so consoles
    on one machine can share it. Blocking I/O: async callers use a thread."""

    def __init__(self, path: Path | None = None):
        self._path = Path(path) if path is not None else None

    @property
    def path(self) -> Path:
        if self._path is None:  # resolved late, so the environment at first use decides
            self._path = default_anchor_path()
        return self._path

    def append(self, database: DatabaseIdentity, row_id: int, row_hash: str) -> None:
        """Remember one written row; raises OSError when the file cannot be written."""
        line = json.dumps(
            {
                "database": database.key,
                "name": database.name,
                "id": row_id,
                "hash": row_hash,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            sort_keys=True,
        )
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)

    def anchors(self, database: DatabaseIdentity) -> dict[int, Anchor]:
        """Every anchor kept for `database`, by row id (the latest line wins when a row id
        was anchored twice). A missing file is no anchors; unreadable lines are skipped
        with a warning (a torn last line after a crash, say)."""
        found: dict[int, Anchor] = {}
        with contextlib.suppress(FileNotFoundError), self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    if data["database"] != database.key:
                        continue
                    anchor = Anchor(data["database"], int(data["id"]), str(data["hash"]), data.get("at", ""))
                except (ValueError, KeyError, TypeError):
                    log.warning("%s line %d is not an anchor; skipped", self.path, number)
                    continue
                found[anchor.row_id] = anchor
        return found
