"""`opsconsole doctor`: one line per backend and an exit code a script can trust."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

BACKEND_VARIABLES = (
    "DATABASE_URL", "KUBECONFIG", "PROMETHEUS_URL", "ALERTMANAGER_URL", "STRIPE_SECRET_KEY",
    "PANEL_URL", "PTERO_APP_KEY", "PROVISIONER_URL", "OPSCONSOLE_BOT_URL", "OPSCONSOLE_CONFIG",
)  # fmt: skip


def run_doctor(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.isupper() and not k.startswith(("DB_", "S3_"))}
    for key in BACKEND_VARIABLES:
        clean.pop(key, None)
    clean["XDG_CONFIG_HOME"] = "/nonexistent"
    return subprocess.run(
        [sys.executable, "-m", "console", "doctor"],
        capture_output=True, text=True, env={**clean, **env}, timeout=60,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines_by_backend(output: str) -> dict[str, str]:
    return {line.split()[0]: line for line in output.splitlines() if line and not line[0].isdigit()}


def test_doctor_with_postgres_up(empty_db):
    result = run_doctor(DATABASE_URL=empty_db)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = lines_by_backend(result.stdout)
    assert set(lines) == {
        "postgres",
        "kube",
        "prometheus",
        "alertmanager",
        "stripe",
        "s3",
        "panel",
        "provisioner",
        "bot",
    }
    assert "ok" in lines["postgres"] and "PostgreSQL 15" in lines["postgres"] and " ms" in lines["postgres"]
    assert "not configured" in lines["kube"] and "KUBECONFIG" in lines["kube"]
    assert "1 of 1 configured backends answer" in result.stdout


def test_doctor_with_postgres_down_names_the_reason_and_fails():
    port = free_port()  # nothing listens there
    result = run_doctor(DATABASE_URL=f"postgresql://ops:pw-not-shown@127.0.0.1:{port}/ops")
    assert result.returncode == 1
    line = lines_by_backend(result.stdout)["postgres"]
    assert "FAILING" in line and f"127.0.0.1:{port}/ops refused the connection" in line
    assert "pw-not-shown" not in result.stdout + result.stderr


def test_doctor_with_a_missing_database(empty_db):
    # The session cluster trusts local connections; a bad database name is what we can get wrong.
    dsn = empty_db.rsplit("/", 1)[0] + "/no_such_database"
    result = run_doctor(DATABASE_URL=dsn)
    assert result.returncode == 1
    assert 'database "no_such_database" does not exist' in lines_by_backend(result.stdout)["postgres"]


def test_doctor_with_nothing_configured_passes_and_says_so():
    result = run_doctor()
    assert result.returncode == 0
    assert "0 of 0 configured backends answer" in result.stdout
