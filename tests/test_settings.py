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
ordrs = 3
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = caught.value.problems
    keys = [line.split(":")[0] for line in problems]
    assert keys == [
        "DATABASE_URL", "S3_USE_SSL", "environment.colour", "operators.bob.role",
        "refresh.overview", "refresh.ordrs",
    ]  # fmt: skip
    assert "hunter2" not in "\n".join(problems)


def test_cli_exits_2_on_invalid_config_without_echoing_secrets(tmp_path):
    path = write(tmp_path, "[refresh]\noverview = -1\n[nonsense]\nx = 1\n")
    env = {"PATH": "/usr/bin:/bin", "STRIPE_SECRET_KEY": "", "DATABASE_URL": "ftp://u:topsecret@h/db"}
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(path), "doctor"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["opsconsole: config: nonsense: unknown key in config.toml"]
    path.write_text("[refresh]\noverview = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "console", "--config", str(path), "doctor"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("opsconsole: config: DATABASE_URL:")
    assert lines[1].startswith("opsconsole: config: refresh.overview:")
    assert "topsecret" not in result.stderr + result.stdout


def test_a_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "absent.toml")


def test_broken_toml_names_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"config.toml: not valid TOML.*line 2"):
        load_settings(write(tmp_path, "[refresh]\noverview = = 3\n"))


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
