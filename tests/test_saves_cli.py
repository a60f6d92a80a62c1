"""`opsconsole saves` against moto's S3 server: the summary an on-call engineer reads at 80
columns, the same as JSON, the listing a page at a time following its own hint, a key that
carries escape sequences shown inert, and 'not configured' naming the setting."""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from console.cli import cli
from console.sandbox.s3 import S3Server

ESCAPE_KEY = "servers/\x1b[2Jwiped\u202e.tar.gz.enc"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    """250 saves of 5 servers over 50 days, 30 exports, one key with an escape sequence."""
    name = s3_server.create_bucket(f"saves-{uuid.uuid4().hex[:10]}")
    now = datetime.now(UTC) - timedelta(hours=1)  # the key put through S3 below is the newest
    items = [
        (f"servers/srv-{n % 5}/world-{n:04d}.tar.gz.enc", b"w" * (100 + n), now - timedelta(hours=n * 4.8))
        for n in range(250)
    ]
    items += [(f"exports/user-{n}/export.tar.gz.enc", b"e" * 50, now - timedelta(days=n)) for n in range(30)]
    s3_server.store(name, items)
    s3_server.client().put_object(Bucket=name, Key=ESCAPE_KEY, Body=b"x")
    return name


@pytest.fixture
def app(s3_server: S3Server, bucket: str, monkeypatch, tmp_path) -> typer.Typer:
    for name, value in s3_server.env("agis-backups").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPSCONSOLE_SAVES_BUCKET", bucket)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("OPSCONSOLE_CONFIG", "OPSCONSOLE_BACKUP_RETENTION_DAYS", "DATABASE_URL", "DB_HOST"):
        monkeypatch.delenv(name, raising=False)
    return cli


def run(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, ["saves", *args], terminal_width=80)


def test_the_summary_adds_up_the_bucket_names_the_newest_and_what_is_past_retention(app, bucket):
    result = run(app)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"s3://{bucket}/  281 objects, ")
    # Saves every 4.8 h for 50 days: the 100 of the first 20 days are past 30 days.
    assert lines[1].startswith("past retention (30 days, before ") and lines[1].endswith(
        ": 100 objects, 29.2 KiB"
    )
    usage = lines[lines.index(next(line for line in lines if line.startswith("usage by prefix"))) + 1 :]
    assert [line.split()[:2] for line in usage[:3]] == [["servers/", "251"], ["exports/", "30"], []]
    assert all(len(line) <= 80 for line in lines[:6])
    assert "20 most recent" in result.output and "oldest past retention" in result.output
    # The key that would clear the screen is shown, not obeyed.
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "servers/\\x1b[2Jwiped\\u202e.tar.gz.enc" in result.output


def test_json_carries_the_same_figures(app):
    result = run(app, "--json", "--depth", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["objects"] == 281 and data["depth"] == 2 and data["prefix_count"] == 36
    assert {p["prefix"] for p in data["prefixes"]} >= {f"servers/srv-{n}/" for n in range(5)}
    assert len(data["recent"]) == 20 and data["recent"][0]["key"] == ESCAPE_KEY  # JSON escapes it
    assert data["past_retention"]["objects"] == 100


def test_the_listing_pages_by_key_and_its_hint_gets_the_next_page(app):
    first = run(app, "--list", "--prefix", "exports/", "--limit", "20")
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert len(lines) == 21 and lines[0].endswith("exports/user-0/export.tar.gz.enc")
    hint = lines[-1].split("the next page: ", 1)[1]
    args = shlex.split(hint)
    assert args[:5] == ["opsconsole", "saves", "--list", "--prefix", "exports/"]
    second = run(app, *args[2:], "--limit", "20")
    assert second.exit_code == 0, second.output
    rest = second.output.splitlines()
    assert len(rest) == 11 and rest[-1] == "10 objects under s3://" + rest[-1].split("s3://")[1]
    assert "next page" not in second.output
    bad = run(app, "--after", "x")
    assert bad.exit_code == 2 and "--after goes with --list" in bad.output


def test_without_a_saves_bucket_it_says_which_setting(app, monkeypatch):
    monkeypatch.delenv("OPSCONSOLE_SAVES_BUCKET")
    result = run(app)
    assert result.exit_code == 1
    assert "not configured (OPSCONSOLE_SAVES_BUCKET)" in result.output
