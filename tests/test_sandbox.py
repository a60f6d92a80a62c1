"""`opsconsole sandbox` as a game-day team uses it: the scenarios it lists, the exports a
shell evals (psql, the provisioner, kubectl and the bot answer on them), a SIGTERM that
leaves no server behind, and what each scenario makes an on-call engineer see."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from console.cli import cli
from console.sandbox.backends import running_env
from console.sandbox.pgcluster import EmbeddedPostgres, make_private_tmpdir
from console.sandbox.scenarios import NodeFull, WebhookFailure, remove_fillers
from tests.conftest import FAKE_KEYS

KUBECTL = os.environ.get("OPSCONSOLE_KUBECTL") or shutil.which("kubectl")
NEEDED = (
    "DATABASE_URL",
    "PROVISIONER_URL",
    "OPSCONSOLE_PROVISIONER_KEY",
    "STRIPE_SECRET_KEY",
    "OPSCONSOLE_STRIPE_API_BASE",
    "PANEL_URL",
    "PTERO_APP_KEY",
    "KUBECONFIG",
    "OPSCONSOLE_BOT_URL",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET",
    "S3_USE_SSL",
    "OPSCONSOLE_SAVES_BUCKET",
    "BACKUP_ENCRYPTION_KEY",
    "OPSCONSOLE_RESTORE_DSN",
    "OPSCONSOLE_CONFIG",
    "PGHOST",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
)


def wait_for(what: str, check: Callable[[], object], timeout: float = 60.0, every: float = 0.2):
    """check()'s first truthy answer; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)


def test_list_describes_every_scenario_in_one_line():
    result = CliRunner().invoke(cli, ["sandbox", "--list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == [
        "calm",
        "crash-loop",
        "node-full",
        "webhook-failure",
        "db-outage",
    ]
    assert all(len(line.split(None, 1)[1]) > 30 for line in lines)
    unknown = CliRunner().invoke(cli, ["sandbox", "--scenario", "meteor"])
    assert unknown.exit_code == 2 and "crash-loop" in unknown.output


def test_env_without_a_running_sandbox_says_so(tmp_path):
    result = CliRunner().invoke(cli, ["sandbox", "--env", "--home", str(tmp_path)])
    assert result.exit_code == 1 and "no sandbox is running" in result.output


# ---- a real sandbox, in its own process -----------------------------------------------------


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """One sandbox home for the module: the second run reuses the first's cluster (no initdb, no seed)."""
    root = make_private_tmpdir("opsconsole-sandbox-")
    yield root
    with contextlib.suppress(Exception):  # a sandbox that died without stopping its server
        EmbeddedPostgres(root / "demo-pg").stop()
    shutil.rmtree(root, ignore_errors=True)


class Running:
    """`opsconsole sandbox` started in the background, with the exports it printed."""

    def __init__(self, home: Path, *args: str):
        self.home = home
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console", "sandbox", "--home", str(home), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            wait_for("the sandbox to be ready", self._ready, timeout=120)
        except BaseException:
            self.stop()
            raise
        printed = subprocess.run(
            [sys.executable, "-m", "console", "sandbox", "--env", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert printed.returncode == 0, printed.stderr
        self.text = printed.stdout
        self.env = parse_exports(printed.stdout)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"the sandbox exited {self.process.returncode}: {self.process.stderr.read()}"
            )
        return running_env(self.home) is not None

    def stop(self) -> tuple[int, str]:
        """SIGTERM; (exit code, what it said on stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return self.process.returncode, err


def parse_exports(text: str) -> dict[str, str]:
    """What `eval` would set; every line is a comment, an export or an unset."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        words = shlex.split(line)
        assert words[0] in ("export", "unset") and len(words) == 2, line
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            values[name] = value
    return values


def refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited; waiting for init to reap it


async def connect(dsn: str) -> str:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval("SELECT current_user || ' ' || (SELECT count(*) FROM orders)")
    finally:
        await conn.close()


def kubectl(env: dict[str, str], home: Path, *args: str) -> str:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, f"--cache-dir={home / 'kube-cache'}", "--request-timeout=30s", *args],
        env={"PATH": os.environ["PATH"], "HOME": str(home), "KUBECONFIG": env["KUBECONFIG"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_crash_loop_sandbox_exports_point_at_live_backends_and_sigterm_stops_them_all(home):
    sandbox = Running(home, "--scenario", "crash-loop", "--speed", "10")
    try:
        env = sandbox.env
        first = sandbox.text.splitlines()[0]
        assert first.startswith("#") and "credentials" in first
        assert set(NEEDED) <= set(env)
        # psql-style: the console's login role, by URL and by the PG* variables psql reads.
        user, orders = asyncio.run(connect(env["DATABASE_URL"])).split()
        assert user == "ops_console" and int(orders) >= 6000
        if shutil.which("psql"):
            pg = {k: v for k, v in env.items() if k.startswith("PG")}
            psql = subprocess.run(
                ["psql", "-Atc", "SELECT current_user"],
                env={"PATH": os.environ["PATH"], **pg},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert psql.stdout.strip() == "ops_console", psql.stderr
        second = subprocess.run([sys.executable, "-m", "console", "sandbox", "--home", str(home)],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert second.returncode == 1 and "already runs" in second.stderr
        provisioner = httpx.post(
            f"{env['PROVISIONER_URL']}/servers-provision",
            json={},
            timeout=10,
            headers={"Authorization": f"Bearer {env['OPSCONSOLE_PROVISIONER_KEY']}"},
        )
        assert (provisioner.status_code, provisioner.json()) == (400, {"error": "order_id is required"})

        # crash-loop: production's bot has no ready pod, and the bot's health says so.
        def bot_down():
            answer = httpx.get(f"{env['OPSCONSOLE_BOT_URL']}/health", timeout=5)
            return answer if answer.status_code == 503 else None

        health = wait_for("the bot's /health to say it is down", bot_down, timeout=30)
        assert "agis-bot 0/3 pods ready" in health.json()["reason"]
        if KUBECTL:
            ready = kubectl(
                env,
                home,
                "get",
                "deployment",
                "agis-bot",
                "-n",
                "production",
                "-o",
                "jsonpath={.status.readyReplicas}/{.spec.replicas}",
            )
            assert ready in ("/3", "0/3")
            pods = kubectl(env, home, "get", "pods", "-n", "production", "-l", "app=agis-bot", "--no-headers")
            assert pods.count("CrashLoopBackOff") == 3
        check_s3(env)
        secret_words = [
            env[k] for k in ("PGPASSWORD", "STRIPE_SECRET_KEY", "PTERO_APP_KEY", "BACKUP_ENCRYPTION_KEY")
        ]
        ports = [int(env["PGPORT"])] + [
            urlsplit(env[k]).port
            for k in (
                "PROVISIONER_URL",
                "OPSCONSOLE_STRIPE_API_BASE",
                "PANEL_URL",
                "OPSCONSOLE_BOT_URL",
                "PROMETHEUS_URL",
                "ALERTMANAGER_URL",
                "S3_ENDPOINT",
            )
            if k in env
        ]
        kube_port = urlsplit(_kube_server(env["KUBECONFIG"])).port
        postmaster = int((home / "demo-pg" / "postmaster.pid").read_text().split()[0])
    finally:
        code, said = sandbox.stop()
    assert code == 0, said
    assert "stopped PostgreSQL" in said
    assert not any(word in said for word in secret_words)  # secrets only in the exports
    for port in [*ports, kube_port]:
        assert refused(port), f"port {port} still answers"
    assert gone(postmaster)
    assert running_env(home) is None and not (home / "sandbox.env").exists()


def check_s3(env: dict[str, str]) -> None:
    """The exports point at an S3 server with the backups bucket and a saves bucket of a few
    thousand saves, some past the 30-day retention; the backup key is 32 bytes in hex; the
    restore login is one that may create databases."""
    import boto3
    from botocore.config import Config

    assert (env["S3_BUCKET"], env["OPSCONSOLE_SAVES_BUCKET"], env["S3_USE_SSL"]) == (
        "agis-backups",
        "game-saves",
        "false",
    )
    assert len(bytes.fromhex(env["BACKUP_ENCRYPTION_KEY"])) == 32
    s3 = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],
        aws_access_key_id=env["S3_ACCESS_KEY"],
        aws_secret_access_key=env["S3_SECRET_KEY"],
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    s3.head_bucket(Bucket="agis-backups")
    cutoff = datetime.now(UTC) - timedelta(days=30)
    saves = old = 0
    prefixes = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="game-saves"):
        for item in page.get("Contents", []):
            saves += 1
            old += item["LastModified"] < cutoff
            prefixes.add(item["Key"].split("/", 1)[0])
    assert saves >= 3000 and 0 < old < saves and prefixes >= {"servers", "exports"}

    async def may_create_databases() -> bool:
        conn = await asyncpg.connect(env["OPSCONSOLE_RESTORE_DSN"], timeout=5)
        try:
            return await conn.fetchval(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            )
        finally:
            await conn.close()

    assert asyncio.run(may_create_databases())

    # A week of nightly backups made by the real pipeline, one drilled, one damaged, one legacy.
    argv = [sys.executable, "-m", "console", "backup", "list", "--json"]
    listed = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    backups = json.loads(listed.stdout)
    states = [b["state"] for b in backups["backups"]]
    kinds = [b["kind"] for b in backups["backups"]]
    assert kinds.count("opsconsole") >= 7 and kinds[-1] == "legacy"
    assert (
        "DAMAGED" in states and "drilled" in states and backups["rpo"]["ok"] and not backups["drill"]["due"]
    )


def _kube_server(kubeconfig: str) -> str:
    import yaml

    return yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]


def test_db_outage_the_database_refuses_then_accepts_again(home):
    sandbox = Running(home, "--scenario", "db-outage", "--speed", "10", "--no-monitoring")
    try:
        dsn, bot = sandbox.env["DATABASE_URL"], sandbox.env["OPSCONSOLE_BOT_URL"]

        def answers() -> bool:
            try:
                asyncio.run(connect(dsn))
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            return True

        wait_for("the database to go away", lambda: not answers(), timeout=30)
        health = httpx.get(f"{bot}/health", timeout=5)
        assert health.status_code == 503 and health.json()["database"] == "disconnected"
        wait_for("the database to come back", answers, timeout=60)
        wait_for(
            "the bot to reach it again", lambda: httpx.get(f"{bot}/health", timeout=5).status_code == 200
        )
    finally:
        code, said = sandbox.stop()
    assert code == 0, said


# ---- scenarios on the fakes, in this process --------------------------------------------------


def test_node_full_a_retry_fails_with_no_available_nodes_until_the_scenario_ends(seeded_db, fakes):
    key = FAKE_KEYS[0]

    async def stuck_order() -> str:
        conn = await asyncpg.connect(seeded_db)
        try:
            return str(
                await conn.fetchval(
                    "SELECT o.id FROM orders o JOIN external_accounts x ON x.user_id = o.user_id"
                    " WHERE o.status = 'paid' AND o.pterodactyl_server_id IS NULL"
                    " ORDER BY o.created_at LIMIT 1"
                )
            )
        finally:
            await conn.close()

    def retry(order: str) -> httpx.Response:
        return httpx.post(
            f"{fakes.functions.url}/servers-provision",
            json={"order_id": order},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )

    order = asyncio.run(stuck_order())
    scenario = NodeFull(SimpleNamespace(owner_dsn=seeded_db))
    scenario.setup()
    try:
        failed = retry(order)
        assert (failed.status_code, failed.json()) == (500, {"error": "No available nodes"})
    finally:
        scenario.teardown()
    assert remove_fillers(seeded_db) == 0  # the filling orders went with the scenario
    again = retry(order)
    assert again.status_code == 200 and again.json()["status"] == "provisioning"


def test_webhook_failure_the_bot_counts_failures_and_logs_why(empty_db):
    from console.sandbox.fake_bot import FakeBot
    from console.sandbox.fake_kube import FakeKube, populate

    def failures(bot: FakeBot) -> float:
        metrics = httpx.get(f"{bot.url}/metrics", timeout=5).text
        return float(
            next(
                line.split()[-1]
                for line in metrics.splitlines()
                if line.startswith("agis_bot_stripe_webhook_failures_total")
            )
        )

    with FakeBot() as bot, FakeKube() as kube:
        populate(kube)
        http = httpx.Client(
            verify=kube.ssl_context(), headers={"Authorization": f"Bearer {kube.token}"}, timeout=10
        )
        bot.set_rate("webhook_failures", 0.0)
        scenario = WebhookFailure(SimpleNamespace(bot=bot, kube=kube, owner_dsn=empty_db), speed=20)
        scenario.start()
        try:
            before = failures(bot)
            wait_for("webhook failures to be counted", lambda: failures(bot) > before, timeout=10)
            assert bot.pods == (3, 3)  # only payments break: the bot's pods stay ready

            def logged() -> bool:
                for pod in kube.objects("Pod", "production"):
                    if pod["metadata"]["labels"].get("app") == "agis-bot":
                        path = f"/api/v1/namespaces/production/pods/{pod['metadata']['name']}/log"
                        text = http.get(f"{kube.url}{path}").text
                        if "stripe webhook" in text and "signature verification failed" in text:
                            return True
                return False

            wait_for("the bot's log to say why", logged, timeout=10)
        finally:
            scenario.stop()
