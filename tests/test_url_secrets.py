"""Credentials inside URL settings (`https://user:pass@host`, `?token=`) never show: not in
the doctor's lines, not in a service's error, not in what the console shows of a backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from console.settings import Settings
from console.wiring import build_services
from screens.backends import BackendsScreen
from services.doctor import run_doctor
from services.errors import ServiceError
from tests.conftest import wait_until
from tests.helpers import make_app

SECRETS = ("hunter2-prom", "am-token-9f3", "panel-pw-77", "bot-key-31", "prov-pw-52", "s3-sig-8c")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url_settings() -> dict[str, str]:
    """Every URL setting pointing at a port nothing listens on, each with a credential."""
    port = free_port()
    return {
        "PROMETHEUS_URL": f"http://ops:hunter2-prom@127.0.0.1:{port}",
        "ALERTMANAGER_URL": f"http://127.0.0.1:{port}/?token=am-token-9f3",
        "PANEL_URL": f"http://admin:panel-pw-77@127.0.0.1:{port}",
        "PTERO_APP_KEY": "ptla_x",
        "OPSCONSOLE_BOT_URL": f"http://127.0.0.1:{port}/?api_key=bot-key-31",
        "PROVISIONER_URL": f"http://svc:prov-pw-52@127.0.0.1:{port}/functions/v1",
        "S3_ENDPOINT": f"http://127.0.0.1:{port}/?X-Amz-Signature=s3-sig-8c",
        "S3_BUCKET": "backups",
    }


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} shown in: {text}"


async def test_a_failing_backends_findings_and_errors_hold_no_credential():
    services = build_services(Settings.isolated(**url_settings()).resolved())
    findings = await run_doctor(services.probes(), timeout=5)
    failing = {f.backend: f.reason for f in findings if f.state == "failing"}
    assert {"prometheus", "alertmanager", "panel", "bot", "provisioner", "s3"} <= set(failing)
    assert "Prometheus at http://ops:***@127.0.0.1" in failing["prometheus"]
    assert_no_secret(repr(findings))
    # The errors the areas show: the alerts and the silences, a silence's preview.
    for call in (services.alerts.prometheus_alerts, services.alerts.alertmanager_alerts):
        with pytest.raises(ServiceError) as caught:
            await call()
        assert_no_secret(str(caught.value))
    assert_no_secret(services.alerts.silence_call_text([], 60, "why", "alice"))
    assert_no_secret(services.panel.delete_call_text("12"))
    assert_no_secret(services.provisioner.call_text("servers-provision", {"order_id": "o"}))


def test_the_doctor_line_for_prometheus_down_holds_no_password():
    env = {k: v for k, v in os.environ.items() if k.isupper() and not k.startswith(("DB_", "S3_"))}
    for key in ("DATABASE_URL", "KUBECONFIG", "STRIPE_SECRET_KEY", "OPSCONSOLE_CONFIG"):
        env.pop(key, None)
    env.update(url_settings(), XDG_CONFIG_HOME="/nonexistent")
    result = subprocess.run([sys.executable, "-m", "console", "doctor"], capture_output=True, text=True,
                            env=env, timeout=60)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("prometheus"))
    assert "FAILING" in line and "http://ops:***@127.0.0.1" in line
    assert_no_secret(result.stdout + result.stderr)


async def test_the_backends_area_shows_the_failure_without_the_password(empty_db):
    app = make_app(empty_db, health=0.5, **url_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("minus")
        screen = app.screen
        assert isinstance(screen, BackendsScreen)
        table = screen.query_one("DataTable")

        def shown() -> str:
            return " ".join(str(cell) for key in table.rows for cell in table.get_row(key))

        await wait_until(pilot, lambda: "Prometheus at http://ops:***@127.0.0.1" in shown(), timeout=20)
        assert_no_secret(shown() + repr(app.backend_statuses()))
