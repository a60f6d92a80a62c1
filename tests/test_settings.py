"""Configuration: the seeds' env names, the TOML file, and invalid config exiting 2 with
one plain line per problem, never echoing a secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.settings import ConfigError, load_settings

ENV_KEYS = [
    "DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_READ_HOST",
    "S3_USE_SSL", "STRIPE_SECRET_KEY", "OPSCONSOLE_CONFIG", "OPSCONSOLE_ENV", "PANEL_URL",
    "PROMETHEUS_URL", "BACKUP_ENCRYPTION_KEY", "OPSCONSOLE_SAVES_BUCKET", "OPSCONSOLE_BACKUP_RETENTION_DAYS",
    "OPSCONSOLE_RESTORE_DSN",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_postgres_from_the_manuals_variables_with_a_read_replica(monkeypatch):
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("DB_NAME", "agis")
    monkeypatch.setenv("DB_USER", "agisbot")
    monkeypatch.setenv("DB_PASSWORD", "s3cr@t")
    monkeypatch.setenv("DB_READ_HOST", "replica.internal")
    settings = load_settings()
    assert settings.postgres_dsn() == "postgresql://agisbot:s3cr%40t@db.internal:5432/agis"
    assert settings.postgres_read_dsn() == "postgresql://agisbot:s3cr%40t@replica.internal:5432/agis"
    assert "s3cr" not in repr(settings)  # secrets are SecretStr


def test_environment_operators_and_refresh_from_toml(tmp_path):
    path = write(
        tmp_path,
        """
[environment]
name = "production"
[operators]
alice = "oncall"
bob = { role = "support", os_users = ["robert"] }
[refresh]
orders = 2.5
""",
    )
    settings = load_settings(path)
    assert settings.environment_name == "production"
    assert settings.environment_colour == "red"  # production is red unless told otherwise
    assert settings.resolve_operator("alice") == ("alice", "oncall")
    assert settings.resolve_operator("robert") == ("bob", "support")
    assert settings.resolve_operator("eve") == ("eve", "viewer")  # unknown people only look
    assert settings.refresh.for_area("orders") == 2.5
    assert settings.refresh.for_area("somewhere-new") == settings.refresh.default


def test_every_problem_is_one_line_naming_its_key(tmp_path, monkeypatch):
    monkeypatch.setenv("S3_USE_SSL", "maybe")
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2@db/x")
    path = write(
        tmp_path,
        """
[environment]
colour = "blurple"
[operators]
bob = "wizard"
[refresh]
overview = 0
board = 1e-9
[keymap]
help = "ctrl+nosuchkey"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = caught.value.problems
    keys = [line.split(":")[0] for line in problems]
    assert keys == [
        "DATABASE_URL", "S3_USE_SSL", "environment.colour", "operators.bob.role",
        "refresh.overview", "refresh.board", "keymap.help",
    ]  # fmt: skip
    assert "hunter2" not in "\n".join(problems)


def test_refresh_takes_any_area_within_half_a_second_to_a_day(tmp_path):
    settings = load_settings(write(tmp_path, "[refresh]\nbackups = 60\nchecklists = 0.5\nboard = 86400\n"))
    resolved = settings.resolved()
    assert resolved.refresh_for("backups") == 60 and resolved.refresh_for("checklists") == 0.5
    assert resolved.refresh_for("board") == 86400
    assert resolved.refresh_for("pricing") == resolved.refresh_for("default") == 10.0
    for bad in ("1e-9", "0.49", "86401", "-1", "nan", "inf"):
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, f"[refresh]\npayments = {bad}\n"))
        line = caught.value.problems[0]
        assert line.startswith("refresh.payments: a poll interval must be 0.5 to 86400"), bad


def test_every_validated_setting_reaches_the_resolved_settings(monkeypatch, tmp_path):
    from console.resolved import SECRETS, Resolved
    from console.settings import Settings

    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", "backup-key-not-shown")
    settings = load_settings(write(tmp_path, '[keymap]\nhelp = "f1"\n"area.orders" = "o, ctrl+o"\n'))
    resolved = settings.resolved()
    assert resolved.plain("backup_encryption_key") == "backup-key-not-shown"
    assert "backup-key-not-shown" not in repr(resolved)
    assert resolved.keymap == {"help": "f1", "area.orders": "o,ctrl+o"}
    assert Resolved.from_json(resolved.to_json()) == resolved  # the fast start's pipe carries them
    # Declared once: every field the model validates is carried, every secret one as a Secret.
    carried = {f for f in Resolved.__dataclass_fields__}
    for name, field in Settings.model_fields.items():
        if name in ("db_host", "db_port", "db_name", "db_user", "db_password", "database_url", "db_read_host",
                    "environment", "environment_override", "operators"):  # fmt: skip
            continue  # folded into postgres_dsn / environment_name / operator and role
        assert name in carried, name
        if "SecretStr" in repr(field.annotation):
            assert name in SECRETS, name


def test_a_bad_key_in_the_keymap_is_one_line_naming_the_binding(tmp_path):
    for bad in ("ctrl+", "hyperdrive+x", "not_a_key_name", "f99", ""):
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, f'[keymap]\nhelp = "{bad}"\n'))
        assert caught.value.problems[0].startswith("keymap.help: "), bad
        assert "is not a key" in caught.value.problems[0]
    assert load_settings(write(tmp_path, '[keymap]\nhelp = "question_mark,?,f1,ctrl+shift+h,$"\n'))


def test_a_url_setting_with_a_password_is_masked_in_its_config_error(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_URL", "ftp://ops:hunter2secret@prom.internal/")
    monkeypatch.setenv("PANEL_URL", "panel.internal?token=t0psecret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = "\n".join(caught.value.problems)
    assert "PROMETHEUS_URL: expected an http(s) URL, got 'ftp://ops:***@prom.internal/'" in text
    assert "PANEL_URL: expected an http(s) URL" in text
    assert "hunter2secret" not in text and "t0psecret" not in text


def test_cli_exits_2_on_invalid_config_without_echoing_secrets(tmp_path):
    path = write(tmp_path, "[refresh]\noverview = -1\n[nonsense]\nx = 1\n")
    env = {"PATH": "/usr/bin:/bin", "STRIPE_SECRET_KEY": "", "DATABASE_URL": "ftp://u:topsecret@h/db"}
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(path), "doctor"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    # The unknown section does not hide the other problems: every one, one line each.
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        "opsconsole: config: nonsense: unknown section in config.toml "
        "(known: environment, operators, refresh, keymap)"
    )
    assert lines[1].startswith("opsconsole: config: DATABASE_URL:")
    assert lines[2].startswith("opsconsole: config: refresh.overview:")
    assert len(lines) == 3
    assert "topsecret" not in result.stderr + result.stdout


def test_a_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "absent.toml")


def test_broken_toml_names_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"config.toml: not valid TOML.*line 2"):
        load_settings(write(tmp_path, "[refresh]\noverview = = 3\n"))


def test_a_dsn_asyncpg_would_refuse_is_one_line_naming_the_part_and_not_the_password(monkeypatch):
    cases = {
        "postgresql://u:hunter2@db:99999/x": "DATABASE_URL: port 99999 is out of range (1 to 65535)",
        "postgresql://u:hunter2@db:notaport/x": "DATABASE_URL: port 'notaport' is not a port number",
        "postgresql://u:hunter2@db/x?target_session_attrs=readonly": (
            "DATABASE_URL: target_session_attrs 'readonly' is not one of any, primary, standby, "
            "prefer-standby, read-write, read-only"
        ),
        "postgresql://u:hunter2@db/x?sslmode=on": "DATABASE_URL: sslmode 'on' is not one of disable,",
        "postgresql://u:hunt@r2@db/x": "DATABASE_URL: the user or password holds an '@': write it as %40",
        "postgresql://u:hunter2@db1,/x": "DATABASE_URL: the host list has an empty entry",
    }
    for dsn, expected in cases.items():
        monkeypatch.setenv("DATABASE_URL", dsn)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert len(caught.value.problems) == 1, dsn
        assert caught.value.problems[0].startswith(expected), caught.value.problems
        assert "hunter2" not in caught.value.problems[0]
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db:6432/x?target_session_attrs=read-only")
    assert load_settings().postgres_dsn().endswith("read-only")  # valid: the server answers for it


def test_db_host_must_be_a_host_and_the_pg_variables_asyncpg_reads_are_checked(monkeypatch):
    monkeypatch.setenv("DB_HOST", "db:6432")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == [
        "DB_HOST: 'db:6432' is not a host name or address (the port goes in DB_PORT)"
    ]
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("PGSSLMODE", "yes")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems[0].startswith("DB_HOST: PGSSLMODE 'yes' is not one of disable,")


def test_a_config_file_that_cannot_be_read_as_toml_says_why_in_one_line(tmp_path):
    path = tmp_path / "config.toml"
    latin1, utf16 = '[environment]\nname = "café"\n'.encode("latin-1"), "[environment]\n".encode("utf-16")
    cases = {
        latin1: "not UTF-8 (byte 0xe9 on line 2): save it as UTF-8",
        utf16: "is UTF-16 or binary, not UTF-8 text: save it as UTF-8",
        ("a = " + "[" * 5000 + "]" * 5000).encode(): "nested too deeply to be a config file",
        ("a = " + "{b = " * 5000 + "1" + "}" * 5000).encode(): "nested too deeply to be a config file",
    }
    for raw, expected in cases.items():
        path.write_bytes(raw)
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert caught.value.problems == [f"{path}: {expected}"]
    path.write_bytes(b'\xef\xbb\xbf[environment]\nname = "staging"\n')  # UTF-8 with a BOM reads
    assert load_settings(path).environment_name == "staging"
    with pytest.raises(ConfigError, match="not a regular file"):
        load_settings(tmp_path)


def test_an_unknown_section_does_not_hide_the_other_bad_keys(tmp_path):
    path = write(tmp_path, '[bogus]\nx = 1\n[environment]\ncolour = "nope"\nfoo = 1\n[refresh]\norders = 0\n'
                           '"odd\\nkey" = 0.1\n')  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems == [
        "bogus: unknown section in config.toml (known: environment, operators, refresh, keymap)",
        "environment.colour: not a colour name or #rrggbb: 'nope'",
        "environment.foo: unknown key",
        "refresh.orders: a poll interval must be 0.5 to 86400 seconds (a day) (got 0)",
        "refresh.'odd\\nkey': a poll interval must be 0.5 to 86400 seconds (a day) (got 0.1)",
    ]


def test_thousands_of_bad_keys_are_fifty_lines_saying_how_many_more(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "[refresh]\n" + "".join(f"k{i} = 0\n" for i in range(2000))))
    assert len(caught.value.problems) == 50
    assert caught.value.problems[0].startswith("refresh.k0: a poll interval must be")
    assert caught.value.problems[-1] == "… and 1,951 more problems"


def test_the_fast_tui_start_reports_config_problems_and_exits_2(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text('[operators]\nalice = "wizard"\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "STRIPE_SECRET_KEY": "sk_live_topsecret"}
    run = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 2
    assert "opsconsole: config: operators.alice.role: must be one of" in run.stderr
    assert "topsecret" not in run.stderr + run.stdout


def test_resolved_settings_never_show_their_secrets():
    from console.settings import Settings

    resolved = Settings.isolated(
        DATABASE_URL="postgresql://u:hunter2@db/x", STRIPE_SECRET_KEY="sk_x"
    ).resolved()
    assert "hunter2" not in repr(resolved) and "sk_x" not in repr(resolved)
    again = type(resolved).from_json(resolved.to_json())
    assert again.plain("postgres_dsn") == "postgresql://u:hunter2@db/x"
    assert again == resolved


def test_without_a_terminal_the_console_says_what_to_use_instead(tmp_path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "console"], stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, env=env, timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert "needs a terminal" in run.stderr and "opsconsole orders --json" in run.stderr


def test_backup_settings_retention_saves_bucket_and_a_restore_login_falling_back_to_the_database(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://ops_console:runtime-pw@db.internal/agis")
    resolved = load_settings().resolved()
    assert (resolved.backup_retention_days, resolved.saves_bucket) == (30, None)
    assert resolved.plain("restore_dsn") == resolved.plain("postgres_dsn")  # unset: the console's own
    monkeypatch.setenv("OPSCONSOLE_RESTORE_DSN", "postgresql://restorer:restore-pw@db.internal/postgres")
    monkeypatch.setenv("OPSCONSOLE_BACKUP_RETENTION_DAYS", "14")
    monkeypatch.setenv("OPSCONSOLE_SAVES_BUCKET", "game-saves")
    resolved = load_settings().resolved()
    assert resolved.plain("restore_dsn") == "postgresql://restorer:restore-pw@db.internal/postgres"
    assert (resolved.backup_retention_days, resolved.saves_bucket) == (14, "game-saves")
    assert "restore-pw" not in repr(resolved) and "runtime-pw" not in repr(resolved)

    monkeypatch.setenv("OPSCONSOLE_RESTORE_DSN", "postgresql://restorer:restore-pw@db.internal:99999/x")
    monkeypatch.setenv("OPSCONSOLE_BACKUP_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    problems = caught.value.problems
    assert [line.split(":")[0] for line in problems] == [
        "OPSCONSOLE_BACKUP_RETENTION_DAYS",
        "OPSCONSOLE_RESTORE_DSN",
    ]
    assert "restore-pw" not in "\n".join(problems)
