"""Text from outside made safe to show: `inert` makes a backend's text unable to drive a
terminal (control characters shown, never interpreted), `mask_url` and `mask_urls_in`
keep the credentials a URL setting may carry out of every message, doctor line and log."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

# Bidi overrides and isolates: they reorder what follows on the line, so a name can show
# as something else ("‮txt.exe" reads "exe.txt"). Shown like any other control character.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

ELLIPSIS = "…"


def _is_control(char: str) -> bool:
    code = ord(char)
    return (
        code < 0x20  # C0, newline and tab included: one value, one line
        or 0x7F <= code <= 0x9F  # DEL and C1 (0x9b is a one-byte CSI on some terminals)
        or char in BIDI_CONTROLS
        or 0xD800 <= code <= 0xDFFF  # a lone surrogate cannot even be written to a terminal
    )


def _shown(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def inert(text: object, limit: int | None = None) -> str:
    """`text` (anything: it is str()-ed) as it may reach a terminal, on one line.

    Every control character is written out as a `\\xNN` or `\\uNNNN` escape: ESC shows as
    the four characters `\\x1b`, BEL as `\\x07`, a newline as `\\x0a`, DEL as `\\x7f`, a C1
    byte as `\\x9b`, a bidi override as `\\u202e`, a lone surrogate as `\\udc80`. That form
    is plain ASCII, so it shows on any terminal and font and greps the same in a log.
    Everything else, a backslash included, passes unchanged. With `limit`, a result longer
    than `limit` characters is cut to `limit`, ending in `…` (an escape is never cut in
    half). Never raises.
    """
    text = text if isinstance(text, str) else str(text)
    if _CONTROL.search(text) is None:
        if limit is None or len(text) <= limit:
            return text
        return text[: max(limit - 1, 0)] + ELLIPSIS
    pieces = [_shown(c) if _is_control(c) else c for c in text]
    if limit is not None and sum(map(len, pieces)) > limit:
        kept, used = [], 0
        for piece in pieces:
            if used + len(piece) > limit - 1:
                break
            kept.append(piece)
            used += len(piece)
        pieces = [*kept, ELLIPSIS]
    return "".join(pieces)


# -- secrets in URLs ----------------------------------------------------------------------

MASK = "***"
# A query parameter whose name holds one of these (case and '-'/'_' ignored) carries a secret.
SECRET_PARAM_WORDS = ("token", "key", "secret", "password", "passwd", "pwd", "sig", "auth",
                      "credential", "session")  # fmt: skip


def secret_param(name: str) -> bool:
    """Whether a query parameter called `name` holds a secret: token, key, secret, password,
    sig/signature, auth, access_token, apikey, X-Amz-Credential and the like."""
    plain = unquote(name).lower().replace("-", "").replace("_", "")
    return any(word in plain for word in SECRET_PARAM_WORDS)


def _mask_params(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        parts.append(f"{name}={MASK}" if sep and value and secret_param(name) else part)
    return "&".join(parts)


def mask_url(url: str | None) -> str:
    """`url` fit to show: a password in its userinfo becomes `***` (and a userinfo with no
    password, which is then a token, becomes `***` whole), and so does the value of every
    query or fragment parameter whose name looks secret (`?token=***`). Text that does not
    parse as a URL is masked the same way as far as it can be read; never raises."""
    if not url:
        return url or ""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced '[' in the host: show nothing that may be a secret
        return _mask_loose(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if sep else f"{MASK}@{host}"
    query = _mask_params(parts.query) if parts.query else parts.query
    fragment = _mask_params(parts.fragment) if "=" in parts.fragment else parts.fragment
    masked = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    rest = f"{parts.path}?{parts.query}#{parts.fragment}"
    if "@" in rest and ":" in parts.netloc + rest:
        # A userinfo that did not parse as one: 'user:pass@host' (no scheme), or a password
        # holding '/', '?' or '#'. Masking a little too much beats showing it.
        masked = _mask_loose(masked)
    return masked


_LOOSE_USERINFO = re.compile(r"(?P<user>[^\s/:@?#]*):[^\s@]*@")


def _mask_loose(text: str) -> str:
    text = _LOOSE_USERINFO.sub(lambda m: f"{m['user']}:{MASK}@", text)
    return re.sub(r"(?P<name>[\w.-]+)=(?P<value>[^&#\s]+)",
                  lambda m: f"{m['name']}={MASK}" if secret_param(m["name"]) else m[0], text)  # fmt: skip


def _secrets_of(url: str) -> list[str]:
    """The secret pieces of `url` (its password, a lone userinfo, secret parameter values),
    as written and percent-decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, sep, password = userinfo.partition(":")
        found.append(password if sep else user)
    for section in (parts.query, parts.fragment):
        for part in section.split("&"):
            name, sep, value = part.partition("=")
            if sep and value and secret_param(name):
                found.append(value)
    pieces = {p for s in found for p in (s, unquote(s)) if s}
    return sorted(pieces, key=len, reverse=True)


def mask_urls_in(text: str, *urls: str | None) -> str:
    """`text` (an error message, a library's exception text) with each of `urls` shown
    masked, and every secret piece of them (password, token, as written or decoded)
    replaced by `***` wherever else it appears. Pieces under 4 characters are only masked
    inside the URL itself (replacing every 'a' in a message would say nothing)."""
    for url in urls:
        if not url:
            continue
        masked = mask_url(url)
        if masked != url:
            text = text.replace(url, masked)
        for piece in _secrets_of(url):
            if len(piece) >= 4:
                text = text.replace(piece, MASK)
    return text


_masked_urls: list[str] = []


def mask_logs(*urls: str | None) -> None:
    """From now on, every log record, from any logger, has the secrets of `urls` (the URL
    settings) masked in its message and its traceback, before any handler sees it.
    Idempotent per URL; call it once the settings are known."""
    import logging

    new = [u for u in urls if u and mask_url(u) != u and u not in _masked_urls]
    if not new:
        return
    first = not _masked_urls
    _masked_urls.extend(new)
    if not first:
        return  # the factory below reads _masked_urls, so it already covers the new ones
    make = logging.getLogRecordFactory()

    def masking_factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        message = record.getMessage()
        masked = mask_urls_in(message, *_masked_urls)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_urls_in(trace, *_masked_urls)
        return record

    logging.setLogRecordFactory(masking_factory)


def human_bytes(n: float) -> str:
    """'512 B', '3.4 KiB', '1.2 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_age(delta: timedelta) -> str:
    """A span as an operator reads it: 7 min, 3 h 05 min, 4 d 2 h."""
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{max(seconds // 60, 0)} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"
    return f"{seconds // 86400} d {seconds // 3600 % 24} h"
