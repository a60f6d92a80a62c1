"""pg_dump, pg_restore and psql as subprocesses: found once (the newest installed), given a
DSN without its password (the password goes in PGPASSWORD: a command line is readable by
every user of the machine), in a clean environment, with their errors as one masked line."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from services.errors import BackendFailed, NotConfigured
from services.text import inert, mask_urls_in

SYSTEM_BINS = "/usr/lib/postgresql/*/bin"
# libpq settings from the operator's environment that still apply (TLS files); everything
# else (PGHOST, PGOPTIONS, PGSERVICE...) could point a tool somewhere the DSN does not say.
PASSED_THROUGH = ("PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL", "PGSSLMODE")
_KV_PASSWORD = re.compile(r"""\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)""")


class ToolMissing(NotConfigured):
    """A PostgreSQL client program is not installed."""


def _major(program: Path) -> int:
    """/usr/lib/postgresql/16/bin/pg_dump -> 16."""
    found = re.findall(r"\d+", program.parent.parent.name)
    return int(found[0]) if found else 0


@functools.cache
def pg_tool(name: str) -> str:
    """The path of PostgreSQL client program `name` (pg_dump, pg_restore, psql): the newest
    /usr/lib/postgresql/N/bin that has it (a newer pg_dump reads older servers, never the
    reverse), else the one on PATH. Raises ToolMissing."""
    candidates = [p / name for p in Path("/").glob(SYSTEM_BINS.lstrip("/")) if (p / name).exists()]
    if candidates:
        return str(max(candidates, key=_major))
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(
        f"{name} is not installed: install Debian's postgresql-client (or postgresql) package",
        backend="backup",
    )


@functools.cache
def tool_version(name: str) -> str:
    """`pg_dump (PostgreSQL) 16.4` -> '16.4'; raises ToolMissing."""
    out = subprocess.run([pg_tool(name), "--version"], capture_output=True, text=True, timeout=10)
    found = re.search(r"\(PostgreSQL\)\s+(\S+)", out.stdout)
    return found.group(1) if found else out.stdout.strip()[:40]


def without_password(dsn: str) -> tuple[str, str | None]:
    """`dsn` with its password taken out, and the password (None when it has none). Works for
    postgres:// URLs (userinfo or ?password=) and key=value strings."""
    if "://" not in dsn:
        found = _KV_PASSWORD.search(dsn)
        if not found:
            return dsn, None
        value = found.group(1)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return (dsn[: found.start()] + dsn[found.end() :]).strip(), value
    parts = urlsplit(dsn)
    password = parts.password
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{host}" if user else host
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "password"]
    password = next((v for k, v in query if k == "password"), None) or password
    if password is not None and parts.password is not None and password == parts.password:
        password = unquote(password)
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept), parts.fragment)), password


def tool_env(dsn: str, app: str) -> tuple[str, dict[str, str]]:
    """(the DSN to give the tool, its environment): no password on the command line, no
    stray libpq variable from the caller's environment."""
    bare, password = without_password(dsn)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "PGAPPNAME": app,
           "PGCONNECT_TIMEOUT": "10"}  # fmt: skip
    env.update({k: os.environ[k] for k in PASSED_THROUGH if k in os.environ})
    if password is not None:
        env["PGPASSWORD"] = password
    return bare, env


def tool_error(name: str, code: int, stderr: bytes | str, *secrets: str | None) -> BackendFailed:
    """A failed tool's last meaningful line, masked and inert, as a BackendFailed."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
    last = mask_urls_in(last, *secrets)
    for secret in secrets:
        _bare, password = without_password(secret) if secret else ("", None)
        if password and len(password) >= 4:
            last = last.replace(password, "***")
    return BackendFailed(f"{name} exited with {code}: {inert(last[:400]) or 'no message'}", backend="backup")
