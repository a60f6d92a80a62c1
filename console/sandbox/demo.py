"""`opsconsole demo`: the embedded PostgreSQL (reused between runs, stopped on exit),
migrated with the reference schema and seeded with a realistic business as the cluster's
owner, then the console, connected as a runtime login role (a member of ops_runtime)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path

DEMO_DB = "opsconsole_demo"
CONSOLE_LOGIN = "ops_console"  # the console's login role: a member of ops_runtime, owns nothing


def say(line: str) -> None:
    print(f"opsconsole demo: {line}", file=sys.stderr, flush=True)


def demo_home() -> Path:
    """Where the demo keeps its cluster: the user's data dir, or, as root (whose home the
    postgres OS user cannot enter), /var/lib/opsconsole."""
    from platformdirs import user_data_dir

    if os.geteuid() == 0:
        return Path("/var/lib/opsconsole")
    return Path(user_data_dir("opsconsole"))


def _password(home: Path, name: str = "demo-password") -> str:
    """A demo password (the cluster owner's, or the console login's), made once and kept
    beside the cluster (mode 0600)."""
    path = home / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password)
    return password


async def prepare_database(admin_dsn: str, dsn: str, *, reset: bool) -> str:
    """Create, migrate and seed the demo database as needed; returns what was done."""
    import asyncpg

    from console.sandbox.seed import seed_business
    from services.migrations import migrate

    admin = await asyncpg.connect(admin_dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEMO_DB)
        if exists and reset:
            await admin.execute(f'DROP DATABASE "{DEMO_DB}" WITH (FORCE)')
            exists = False
        if not exists:
            await admin.execute(f'CREATE DATABASE "{DEMO_DB}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        report = await migrate(conn, with_reference=True)
        orders = await conn.fetchval("SELECT count(*) FROM orders")
        if orders == 0:
            started = time.perf_counter()
            summary = await seed_business(conn)
            took = time.perf_counter() - started
            return f"seeded {summary.orders:,} orders and {summary.users:,} users ({took:.1f} s)"
        applied = f"{len(report.applied)} migrations applied, " if report.applied else ""
        return f"{applied}reusing {orders:,} orders (--reset reseeds)"
    finally:
        await conn.close()


async def console_login(admin_dsn: str, password: str, login: str = CONSOLE_LOGIN) -> None:
    """Create (or, in a reused cluster, update) the console's login role: a member of
    ops_runtime, which the migrations made, with `password`. The console connects as it;
    `migrate` and the fakes standing in for the business's own backends use the owner."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", login)
        # Role statements take no parameters: format() quotes the name and the password.
        verb = "ALTER" if exists else "CREATE"
        for template in (f"{verb} ROLE %I LOGIN PASSWORD %L", "GRANT ops_runtime TO %I"):
            format_sql = "SELECT format($1, $2::text, $3::text)"
            await conn.execute(await conn.fetchval(format_sql, template, login, password))
    finally:
        await conn.close()


def start_monitoring(home: Path, bot) -> tuple:
    """Prometheus (scraping the fake bot every second, with the shipped AGIS rules, their
    `for` shortened so alerts fire within a minute) and Alertmanager, from the Debian
    packages, on 127.0.0.1; () when they are not installed (the demo runs without)."""
    from console.sandbox.monitoring import (
        AlertmanagerServer,
        MonitoringBinariesNotFound,
        PrometheusServer,
        demo_rules,
    )

    root = home / "demo-monitoring"
    # A fresh TSDB each run: an old run's bot (another port, another scenario) would still
    # fire its alerts for the hour its samples stay in range.
    shutil.rmtree(root / "prometheus" / "data", ignore_errors=True)
    rules = demo_rules(Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "agis-rules.yml",
                       root / "agis-rules.yml", for_="30s")  # fmt: skip
    try:
        am = AlertmanagerServer(root / "alertmanager")
        am.start()
    except MonitoringBinariesNotFound as exc:
        say(f"{exc}: the incidents area runs without Prometheus and Alertmanager")
        return ()
    prometheus = PrometheusServer(root / "prometheus", rule_files=[rules], interval="1s",
                                  scrape_targets={"agis-bot": bot.url.removeprefix("http://")},
                                  alertmanager_url=am.url)  # fmt: skip
    prometheus.start()
    # The story: the bot starts erring and a Stripe webhook fails now and then, so
    # HighErrorRate and PaymentWebhookFailures fire about a minute in.
    bot.set_rate("errors", 8.0)
    bot.set_rate("webhook_failures", 0.02)
    say(f"Prometheus {prometheus.url}, Alertmanager {am.url}")
    return (prometheus, am)


def run_demo(*, reset: bool = False, read_only: bool = False) -> int:
    """Start the sandbox, run the console on it, stop the sandbox. Returns the exit code."""
    from console.sandbox.pgcluster import ClusterError, EmbeddedPostgres, PostgresBinariesNotFound

    home = demo_home()
    home.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedPostgres(home / "demo-pg", password=_password(home))
    started = time.perf_counter()
    try:
        created = cluster.init()
        cluster.start()
    except (PostgresBinariesNotFound, ClusterError) as exc:
        say(str(exc))
        return 1
    say(
        f"{'created' if created else 'started'} PostgreSQL in {cluster.data_dir} "
        f"on 127.0.0.1:{cluster.port} ({time.perf_counter() - started:.1f} s)"
    )
    # A closed SSH session (SIGHUP) or a kill (SIGTERM) must still stop the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        dsn = cluster.dsn(DEMO_DB)
        say(asyncio.run(prepare_database(cluster.dsn("postgres"), dsn, reset=reset)))
        console_password = _password(home, "demo-console-password")
        asyncio.run(console_login(cluster.dsn("postgres"), console_password))
        console_dsn = cluster.dsn(DEMO_DB, user=CONSOLE_LOGIN, password=console_password)
        say(f"the console connects as {CONSOLE_LOGIN} (in ops_runtime: it can only append to the audit log)")
        from console.sandbox.fake_bot import FakeBot
        from console.sandbox.fake_functions import FakeFunctions
        from console.sandbox.fake_kube import FakeKube, populate
        from console.sandbox.fake_panel import FakePanel
        from console.sandbox.fake_stripe import FakeStripe
        from console.settings import Settings, real_user
        from console.tui import run_tui

        # The provisioning functions' stand-in: retried orders really get a server.
        functions = FakeFunctions(dsn, service_key=secrets.token_urlsafe(16))
        payments = FakeStripe(f"sk_test_{secrets.token_hex(12)}", dsn=dsn)
        panel = FakePanel(f"ptla_{secrets.token_hex(12)}")
        # The cluster: the AGIS world of the ops manual, moving (a pod starts crash-looping,
        # the fleet scales with its players).
        kube = FakeKube()
        bot = FakeBot()
        fakes = (functions, payments, panel, kube, bot)
        for fake in fakes:
            fake.start()
        populate(kube)
        kube.start_scenario()
        kubeconfig = kube.kubeconfig(home / "demo-kubeconfig")
        say(f"loopback fakes: functions {functions.url}, Stripe {payments.url}, panel {panel.url}, "
            f"Kubernetes {kube.url}, bot {bot.url}")  # fmt: skip
        monitoring = start_monitoring(home, bot)
        urls = {}
        if monitoring:
            urls = {"PROMETHEUS_URL": monitoring[0].url, "ALERTMANAGER_URL": monitoring[1].url}
        try:
            settings = Settings.isolated(
                DATABASE_URL=console_dsn,
                PROVISIONER_URL=functions.url,
                OPSCONSOLE_PROVISIONER_KEY=functions.service_key,
                STRIPE_SECRET_KEY=payments.secret_key,
                OPSCONSOLE_STRIPE_API_BASE=payments.url,
                PANEL_URL=panel.url,
                PTERO_APP_KEY=panel.app_key,
                KUBECONFIG=str(kubeconfig),
                OPSCONSOLE_BOT_URL=bot.url,
                **urls,
                environment={"name": "demo", "colour": "green"},
                operators={real_user(): {"role": "admin"}},
            ).resolved()
            run_tui(settings, read_only=read_only, dry_run=False)
        finally:
            for server in (*monitoring, *fakes):
                server.stop()
        return 0
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
            say("stopped PostgreSQL")
