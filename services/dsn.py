"""A PostgreSQL DSN read without connecting, the way asyncpg will read it: where it points
(host:port/db, never the credentials) and what in it asyncpg would refuse or crash on (a
port out of range, an unknown sslmode), as one line each that never shows a secret."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

MAX_PORT = 65535
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
SSL_NEGOTIATIONS = ("postgres", "direct")
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
GSSLIBS = ("gssapi", "sspi")
# Query parameters whose value asyncpg checks itself (any other goes to the server as a
# setting, and the server's answer is an ordinary error).
CHOICES = {
    "sslmode": SSLMODES,
    "target_session_attrs": SESSION_ATTRS,
    "sslnegotiation": SSL_NEGOTIATIONS,
    "ssl_min_protocol_version": TLS_VERSIONS,
    "ssl_max_protocol_version": TLS_VERSIONS,
    "gsslib": GSSLIBS,
}
# The libpq environment variables asyncpg falls back on when the DSN leaves a part out.
ENV_CHOICES = {
    "PGSSLMODE": ("sslmode", SSLMODES),
    "PGTARGETSESSIONATTRS": ("target_session_attrs", SESSION_ATTRS),
    "PGSSLNEGOTIATION": ("sslnegotiation", SSL_NEGOTIATIONS),
}
_IPV6 = re.compile(r"\[([^\]]+)\](?::(.*))?")


def shown(value: str, limit: int = 40) -> str:
    """`value` quoted for a message: control characters escaped, cut to `limit` characters."""
    text = value if len(value) <= limit else value[: limit - 1] + "…"
    return repr(text)


def _port_problem(text: str, what: str) -> str | None:
    if not (text.isascii() and text.isdigit()):
        return f"{what} {shown(text)} is not a port number (1 to {MAX_PORT})"
    value = text.lstrip("0") or "0"  # as int() reads it, without building a huge int
    if len(value) > 5 or not 1 <= int(value) <= MAX_PORT:
        return f"{what} {value if len(value) <= 12 else shown(value, 12)} is out of range (1 to {MAX_PORT})"
    return None


def _hostlist(hostlist: str, *, unquoted: bool, source: str = "") -> tuple[list[str], list[str], list[str]]:
    """(hosts, ports given with them, problems) for 'h1:5432,[::1]:5433,/run/pg'; each
    problem starts with `source` (a variable's name) when the list came from one."""
    what = f"{source}: " if source else ""
    hosts: list[str] = []
    ports: list[str] = []
    problems: list[str] = []
    for spec in hostlist.split(","):
        port = ""
        if not spec:
            problems.append(f"{what}the host list has an empty entry")
            continue
        if spec[0] == "/":
            host = spec
        elif spec[0] == "[":
            match = _IPV6.fullmatch(spec)
            if match is None:
                problems.append(f"{what}{shown(spec)} is not an [IPv6]:port address")
                continue
            host, port = match.group(1), match.group(2) or ""
        else:
            host, _, port = spec.partition(":")
        if unquoted:
            port = unquote(port)
        if port:
            problem = _port_problem(port, f"{what}port")
            if problem:
                problems.append(problem)
        hosts.append(host)
        ports.append(port)
    return hosts, ports, problems


def _hosts(count: int) -> str:
    return "1 host" if count == 1 else f"{count} hosts"


# With no host named anywhere, asyncpg tries five: /run/postgresql, /var/run/postgresql,
# /tmp, /private/tmp and localhost.
DEFAULT_HOSTS = 5


def _ports(text: str, source: str, hosts: int | None) -> list[str]:
    """Problems in a port list ('5432' or '5432,5433') that is given for `hosts` hosts (0:
    none named; None: the list is not used for any)."""
    given = text.split(",")
    problems = [problem for port in given if (problem := _port_problem(port, source))]
    if hosts is not None and len(given) > 1 and len(given) != (hosts or DEFAULT_HOSTS):
        problems.append(f"{source} gives {len(given)} ports for {_hosts(hosts)}" if hosts
                        else f"{source} gives {len(given)} ports but names no host")  # fmt: skip
    return problems


def dsn_problems(dsn: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Why asyncpg would refuse `dsn` (or crash on it) before connecting, one line each,
    naming the part ('port 99999 is out of range (1 to 65535)') and never the password;
    [] when it reads. `environ` (default os.environ) supplies the PG* variables asyncpg
    falls back on; a problem in one of those names the variable."""
    environ = os.environ if environ is None else environ
    try:
        parts = urlsplit(dsn)
    except ValueError as exc:  # an unbalanced '[' in the host
        return [f"not a URL ({exc})"]
    if parts.scheme not in ("postgres", "postgresql"):
        return [f"expected a postgresql:// URL (scheme was {parts.scheme or 'missing'!r})"]
    problems: list[str] = []
    # asyncpg splits user:password from the hosts at the FIRST '@' (urllib at the last).
    auth, at, hostspec = parts.netloc.partition("@")
    if not at:
        hostspec, auth = auth, ""
    if "@" in hostspec:
        problems.append("the user or password holds an '@': write it as %40")
        hostspec = hostspec.rpartition("@")[2]
    query: dict[str, str] = {}
    if parts.query:
        try:
            query = {k: v[-1] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
        except ValueError:
            # The query may hold password=: name no value.
            problems.append("the part after '?' is not name=value pairs joined by '&'")
    for name, choices in CHOICES.items():
        value = query.get(name)
        if value is not None and value not in choices:
            problems.append(f"{name} {shown(value)} is not one of {', '.join(choices)}")
    # The hosts: the DSN's, else ?host=, else PGHOST, else asyncpg's own list of five.
    hosts: list[str] = []
    if hostspec:
        hosts, _, found = _hostlist(hostspec, unquoted=True)
        problems += found
    elif query.get("host"):
        hosts, _, found = _hostlist(query["host"], unquoted=False, source="?host=")
        problems += found
    elif environ.get("PGHOST"):
        hosts, _, found = _hostlist(environ["PGHOST"], unquoted=False, source="PGHOST")
        problems += found
    # The ports for hosts that name none: ?port= when the DSN names no host, else PGPORT.
    if query.get("port"):
        problems += _ports(query["port"], "?port=", None if hostspec else len(hosts))
    if (hostspec or not query.get("port")) and environ.get("PGPORT"):
        problems += _ports(environ["PGPORT"], "PGPORT", len(hosts))
    for name, (param, choices) in ENV_CHOICES.items():
        value = environ.get(name)
        if param not in query and value and value not in choices:
            problems.append(f"{name} {shown(value)} is not one of {', '.join(choices)}")
    return problems


def describe_dsn(dsn: str) -> str:
    """host:port/db for a DSN, without user or password; never raises, whatever the DSN."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "(an unreadable DSN)"
    hostspec = parts.netloc.rpartition("@")[2]
    first = hostspec.split(",")[0]
    if first.startswith("["):
        match = _IPV6.fullmatch(first)
        host, port = (match.group(1), match.group(2) or "") if match else (first, "")
    else:
        host, _, port = first.partition(":")
    user = parts.netloc.rpartition("@")[0].partition(":")[0] if "@" in parts.netloc else ""
    host = unquote(host) or "localhost"
    port = unquote(port) or "5432"
    db = unquote(parts.path.lstrip("/")) or unquote(user) or "postgres"
    more = f" (+{hostspec.count(',')} more)" if "," in hostspec else ""
    where = f"{host}:{port}/{db}"
    return (where if len(where) <= 100 else where[:99] + "…") + more


def session_attrs(dsn: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The target_session_attrs the DSN (or PGTARGETSESSIONATTRS) asks for, if any but 'any'."""
    environ = os.environ if environ is None else environ
    try:
        query = parse_qs(urlsplit(dsn).query)
    except ValueError:
        query = {}
    value = (query.get("target_session_attrs") or [None])[-1] or environ.get("PGTARGETSESSIONATTRS")
    return value if value and value != "any" else None
