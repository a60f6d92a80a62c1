"""The sandbox's monitoring: the shipped AGIS rule file passes promtool; the fake bot's
/metrics is valid exposition text whose counters only grow; a real Prometheus scraping it
fires a rule that a real Alertmanager then lists; Prometheus stops and starts again."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from console.sandbox.fake_bot import FakeBot
from console.sandbox.monitoring import AlertmanagerServer, PrometheusServer, demo_rules

T = TypeVar("T")

SHIPPED_RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "agis-rules.yml"
needs_binaries = pytest.mark.skipif(
    not shutil.which("prometheus") or not shutil.which("prometheus-alertmanager"),
    reason="needs the Debian packages prometheus and prometheus-alertmanager (make test installs them)",
)
needs_promtool = pytest.mark.skipif(
    not shutil.which("promtool"), reason="needs promtool (package prometheus)"
)

TEST_RULES = """
groups:
  - name: agis-bot-test
    rules:
      - alert: DatabaseConnectionFailed
        expr: agis_bot_database_connected == 0
        for: 1s
        labels:
          severity: critical
        annotations:
          summary: "Database connection failed"
"""
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def _eventually(probe: Callable[[], T], timeout: float = 15.0, what: str = "") -> T:
    """The first truthy result of `probe`, polled until `timeout` (servers in other processes
    give no event to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or probe}")
        time.sleep(0.2)


def _parse_exposition(text: str) -> tuple[dict[str, str], dict[str, float]]:
    """(family -> TYPE, 'name{labels}' -> value); asserts every sample has HELP and TYPE."""
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"not an exposition line: {line!r}"
            name, labels, value = match.groups()
            assert name in types and name in helps, f"{name} has no TYPE/HELP"
            samples[name + (labels or "")] = float(value)
    return types, samples


def _query(prometheus: PrometheusServer, promql: str) -> list[dict]:
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def _refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


# -- rule files ---------------------------------------------------------------------------


@needs_promtool
def test_the_shipped_agis_rules_pass_promtool():
    run = subprocess.run(
        ["promtool", "check", "rules", str(SHIPPED_RULES)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 4 rules found" in run.stdout


@needs_promtool
def test_demo_rules_shorten_every_for_and_keep_the_rules(tmp_path):
    out = demo_rules(SHIPPED_RULES, tmp_path / "demo" / "rules.yml", for_="30s")
    text = out.read_text()
    assert re.findall(r"for: (\S+)", text) == ["30s"] * 4
    assert "rate(agis_bot_errors_total[5m]) > 1" in text and "{{ $value }}" in text
    run = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


# -- the fake bot's metrics ---------------------------------------------------------------


def test_fake_bot_metrics_are_exposition_text_and_counters_only_grow():
    with FakeBot() as bot:
        bot.commands_per_second = 1000.0
        first = httpx.get(f"{bot.url}/metrics", timeout=5)
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
        types, before = _parse_exposition(first.text)
        assert types == {
            "agis_bot_commands_total": "counter",
            "agis_bot_errors_total": "counter",
            "agis_bot_stripe_webhook_failures_total": "counter",
            "agis_bot_servers_total": "gauge",
            "agis_bot_users_total": "gauge",
            "agis_bot_database_connected": "gauge",
        }
        assert sum(v for k, v in before.items() if k.startswith("agis_bot_servers_total{")) == 38
        assert before["agis_bot_database_connected"] == 1

        key = 'agis_bot_commands_total{command="servers"}'
        after = _eventually(
            lambda: (
                (s := _parse_exposition(httpx.get(f"{bot.url}/metrics").text)[1])[key] > before[key] and s
            ),
            what="commands_total to grow",
        )
        # A lower rate keeps what accrued: counters never go back.
        bot.commands_per_second = 0.0
        bot.database_connected = False
        _, later = _parse_exposition(httpx.get(f"{bot.url}/metrics").text)
        assert later[key] >= after[key] and bot.commands_per_second == 0.0
        assert later["agis_bot_database_connected"] == 0

        bot.down = True
        assert httpx.get(f"{bot.url}/metrics").status_code == 503
        assert httpx.get(f"{bot.url}/health").status_code == 503


# -- real Prometheus and Alertmanager -------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[FakeBot, PrometheusServer, AlertmanagerServer]]:
    root = tmp_path_factory.mktemp("monitoring")
    rules = root / "rules.yml"
    rules.write_text(TEST_RULES)
    bot = FakeBot()
    am = AlertmanagerServer(root / "am")
    prometheus: PrometheusServer | None = None
    try:
        bot.start()
        am.start()
        prometheus = PrometheusServer(
            root / "prom",
            rule_files=[rules],
            scrape_targets={"agis-bot": bot.url.removeprefix("http://")},
            alertmanager_url=am.url,
            interval="1s",
        )
        prometheus.start()
        yield bot, prometheus, am
    finally:
        if prometheus is not None:
            prometheus.stop()
        am.stop()
        bot.stop()


@needs_binaries
def test_a_bot_without_its_database_fires_in_prometheus_and_reaches_alertmanager(stack):
    bot, prometheus, am = stack
    bot.database_connected = False
    try:
        firing = _eventually(
            lambda: _query(prometheus, 'ALERTS{alertname="DatabaseConnectionFailed", alertstate="firing"}'),
            what="DatabaseConnectionFailed firing in Prometheus",
        )
        assert firing[0]["metric"]["severity"] == "critical"

        def listed() -> list[dict]:
            alerts = httpx.get(f"{am.url}/api/v2/alerts", timeout=5).json()
            return [a for a in alerts if a["labels"].get("alertname") == "DatabaseConnectionFailed"]

        alert = _eventually(listed, what="DatabaseConnectionFailed in Alertmanager")[0]
        assert alert["status"]["state"] == "active"
        assert alert["labels"]["job"] == "agis-bot"
        assert alert["annotations"]["summary"] == "Database connection failed"
    finally:
        bot.database_connected = True


@needs_binaries
def test_a_bot_that_is_down_is_seen_as_down(stack):
    bot, prometheus, _am = stack
    bot.down = True
    try:
        _eventually(
            lambda: [r for r in _query(prometheus, 'up{job="agis-bot"}') if r["value"][1] == "0"],
            what="up == 0",
        )
    finally:
        bot.down = False
    _eventually(lambda: [r for r in _query(prometheus, 'up{job="agis-bot"}') if r["value"][1] == "1"])


@needs_binaries
def test_prometheus_stops_and_starts_again_on_the_same_port(stack, tmp_path):
    _bot, prometheus, _am = stack
    url, port = prometheus.url, prometheus.port
    prometheus.stop()
    prometheus.stop()  # idempotent
    try:
        assert _refuses(port)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/-/ready", timeout=2)
    finally:
        assert prometheus.start() == url
    assert prometheus.start() == url  # idempotent
    assert httpx.get(f"{url}/-/ready", timeout=5).status_code == 200
    # New rules are taken up by a live reload.
    other = tmp_path / "other.yml"
    other.write_text(TEST_RULES.replace("DatabaseConnectionFailed", "SomethingElse"))
    prometheus.set_rules([other])
    groups = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert [r["name"] for g in groups for r in g["rules"]] == ["SomethingElse"]
