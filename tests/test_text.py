"""services.text: a backend's text can never drive the terminal (inert), and a URL setting's
credentials never show (mask_url, mask_urls_in)."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from services.text import inert, mask_url, mask_urls_in

CONTROLS = (
    {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))}
    | set("\u202a\u202b\u202c\u202d\u202e")
    | set("\u2066\u2067\u2068\u2069")
)
# Every code point, lone surrogates and the controls above included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)
PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")).filter(lambda c: c not in CONTROLS))


def dangerous(text: str) -> set[str]:
    return {c for c in text if c in CONTROLS or unicodedata.category(c) == "Cs"}


def test_the_issues_server_name_shows_its_escapes_instead_of_running_them():
    shown = inert("evil\x1b]0;PWNED\x07\x1b[2J")
    assert shown == "evil\\x1b]0;PWNED\\x07\\x1b[2J"
    assert inert("line one\nline two\ttab\r") == "line one\\x0aline two\\x09tab\\x0d"
    assert inert("\x9b2J \x7f") == "\\x9b2J \\x7f"  # C1 CSI and DEL
    assert inert("invoice\u202efdp.exe") == "invoice\\u202efdp.exe"  # bidi override


@given(ANY_TEXT)
def test_no_control_character_survives_any_input(text):
    assert dangerous(inert(text)) == set()


@given(PRINTABLE)
def test_printable_text_passes_through_unchanged(text):
    assert inert(text) == text


@given(ANY_TEXT, st.integers(min_value=1, max_value=50))
def test_a_limit_bounds_the_shown_length_and_never_cuts_an_escape(text, limit):
    shown = inert(text, limit=limit)
    assert len(shown) <= limit
    assert dangerous(shown) == set()
    full = inert(text)
    if len(full) <= limit:
        assert shown == full
    else:
        # the cut falls between two characters' pieces, never inside a "\x1b"
        assert shown.endswith("…")
        assert any(inert(text[:k]) == shown[:-1] for k in range(len(text) + 1))


def test_limit_only_where_asked():
    assert inert("x" * 5000) == "x" * 5000
    assert inert("x" * 5000, limit=10) == "x" * 9 + "…"
    assert inert("\x1b" * 4, limit=10) == "\\x1b\\x1b…"


def test_anything_is_shown_as_text():
    assert inert(None) == "None" and inert(42) == "42"


def test_mask_url_hides_the_password_and_secret_parameters():
    assert mask_url("https://ops:hunter2@prom.internal:9090/") == "https://ops:***@prom.internal:9090/"
    assert mask_url("https://ghp_abcdef@panel.example") == "https://***@panel.example"
    assert mask_url("https://am.example/api?token=t0k&team=ops&X-Amz-Signature=abc") == (
        "https://am.example/api?token=***&team=ops&X-Amz-Signature=***"
    )
    names = ("key", "secret", "password", "sig", "signature", "auth", "access_token", "apikey", "API_KEY")
    for name in names:
        assert mask_url(f"http://h/?{name}=v4lue") == f"http://h/?{name}=***"
    assert mask_url("http://h:9090/prefix?query=up") == "http://h:9090/prefix?query=up"  # nothing secret
    assert mask_url("ops:hunter2@prom:9090") == "ops:***@prom:9090"  # no scheme: still masked
    assert mask_url(None) == "" and mask_url("http://[broken") == "http://[broken"


@given(st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=4, max_size=30))
def test_mask_url_never_shows_a_password(password):
    url = f"https://user:{password}@host.example:8443/path?token={password}x"
    assert mask_url(url) == "https://user:***@host.example:8443/path?token=***"


def test_mask_urls_in_cleans_a_librarys_message():
    url = "https://ops:s3cr%40t@prom.internal"
    message = f"GET {url}/api/v1/query failed: 401 for ops:s3cr@t and s3cr%40t"
    masked = mask_urls_in(message, url, None)
    assert "s3cr" not in masked
    assert "https://ops:***@prom.internal/api/v1/query" in masked


def test_log_records_carry_no_url_secret(caplog):
    import logging

    from services.text import mask_logs

    url = "http://ops:hunter2-logged@prom.internal:9090"
    mask_logs(url, None, "http://no-secret.internal")
    log = logging.getLogger("services.some_service")
    with caplog.at_level(logging.INFO):
        log.info("polling %s failed: %s", f"{url}/api/v1/query", "refused")
        try:
            raise ConnectionError(f"cannot reach {url}")
        except ConnectionError:
            log.exception("gave up on %s", url)
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "hunter2-logged" not in text
    assert "polling http://ops:***@prom.internal:9090/api/v1/query failed: refused" in text
