"""The sandbox: every backend of the demo (the embedded PostgreSQL, migrated, seeded and given
the console's login role; the loopback fakes; Prometheus and Alertmanager when installed),
started in order, stopped in reverse, and the settings and shell exports that point at them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from console.sandbox.saves import BACKUPS_BUCKET, SAVES_BUCKET

DEMO_DB = "opsconsole_demo"
CONSOLE_LOGIN = "ops_console"  # the console's login role: a member of ops_runtime, owns nothing
ENV_FILE = "sandbox.env"
CONFIG_FILE = "sandbox-config.toml"
UNSET = ("DB_READ_HOST", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET",
         "BACKUP_ENCRYPTION_KEY", "OPSCONSOLE_SAVES_BUCKET", "OPSCONSOLE_RESTORE_DSN",
         "OPSCONSOLE_BACKUP_RETENTION_DAYS", "OPSCONSOLE_ENV", "OPSCONSOLE_KUBE_CONTEXT",
         "PGSERVICE")  # fmt: skip
SECRETS_NOTE = (
    "# opsconsole sandbox: these lines hold the sandbox's own throwaway credentials "
    "(passwords and keys); keep them to this shell"
)


class SandboxError(RuntimeError):
    """A backend of the sandbox could not start; the message says which and why."""


def say(line: str) -> None:
    print(f"opsconsole sandbox: {line}", file=sys.stderr, flush=True)


def sandbox_home() -> Path:
    """Where the sandbox keeps its cluster: the user's data dir, or, as root (whose home the
    postgres OS user cannot enter), /var/lib/opsconsole."""
    from platformdirs import user_data_dir

    if os.geteuid() == 0:
        return Path("/var/lib/opsconsole")
    return Path(user_data_dir("opsconsole"))


def _password(home: Path, name: str = "demo-password", make: Callable[[], str] | None = None) -> str:
    """A sandbox password (the cluster owner's, the console login's) or key (`make` makes
    it: the backups' encryption key), made once and kept beside the cluster (mode 0600)."""
    path = home / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    home.mkdir(parents=True, exist_ok=True)
    password = make() if make else secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password)
    return password


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


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
    packages, on 127.0.0.1; () when they are not installed (the sandbox runs without)."""
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
        say(f"{exc}: the sandbox runs without Prometheus and Alertmanager")
        return ()
    try:
        prometheus = PrometheusServer(root / "prometheus", rule_files=[rules], interval="1s",
                                      scrape_targets={"agis-bot": bot.url.removeprefix("http://")},
                                      alertmanager_url=am.url)  # fmt: skip
        prometheus.start()
    except BaseException:
        am.stop()
        raise
    say(f"Prometheus {prometheus.url}, Alertmanager {am.url}")
    return (prometheus, am)


class Sandbox:
    """The demo's backends. start() brings them up (a failure stops what had started and
    raises SandboxError); stop() stops everything started, in reverse, and is idempotent.
    `home` holds the cluster (reused between runs), the kubeconfig and the env file."""

    def __init__(self, home: Path | None = None, *, reset: bool = False, monitoring: bool = True):
        self.home = Path(home) if home else sandbox_home()
        self.reset = reset
        self.with_monitoring = monitoring
        self._stack = contextlib.ExitStack()
        self.cluster = None
        self.functions = self.payments = self.panel = self.kube = self.bot = None
        self.monitoring: tuple = ()
        self.s3 = None  # console.sandbox.s3.S3Server (moto, in this process), once started
        self.backups_bucket = BACKUPS_BUCKET
        self.saves_bucket = SAVES_BUCKET
        self.kubeconfig: Path | None = None
        self.owner_dsn = ""  # the cluster owner on the demo database: migrations and the fakes
        self.console_dsn = ""  # the console's runtime login on the demo database

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start every backend; raises SandboxError (after stopping what had started)."""
        from console.sandbox.pgcluster import ClusterError, EmbeddedPostgres, PostgresBinariesNotFound
        from services.text import mask_logs

        self.home.mkdir(parents=True, exist_ok=True)
        if running_env(self.home) is not None:
            # It would adopt that sandbox's server, and stop it on the way out.
            raise SandboxError(f"a sandbox (or the demo) already runs from {self.home}: stop it first")
        try:
            self.cluster = EmbeddedPostgres(self.home / "demo-pg", password=_password(self.home))
            started = time.perf_counter()
            created = self.cluster.init()
            self._stack.callback(self._stop_postgres)
            self.cluster.start()
            say(f"{'created' if created else 'started'} PostgreSQL in {self.cluster.data_dir} "
                f"on 127.0.0.1:{self.cluster.port} ({time.perf_counter() - started:.1f} s)")  # fmt: skip
            self.owner_dsn = self.cluster.dsn(DEMO_DB)
            say(asyncio.run(prepare_database(self.cluster.dsn("postgres"), self.owner_dsn, reset=self.reset)))
            console_password = _password(self.home, "demo-console-password")
            asyncio.run(console_login(self.cluster.dsn("postgres"), console_password))
            self.console_dsn = self.cluster.dsn(DEMO_DB, user=CONSOLE_LOGIN, password=console_password)
            mask_logs(self.owner_dsn, self.console_dsn)  # a failing fake's log line never shows them
            say(f"the console connects as {CONSOLE_LOGIN} (in ops_runtime: it only appends to the audit log)")
            self._start_db_clients()
            self._start_fakes()
            self._start_s3()
            if self.with_monitoring:
                self.monitoring = start_monitoring(self.home, self.bot)
                for server in self.monitoring:
                    self._stack.callback(server.stop)
        except (PostgresBinariesNotFound, ClusterError, OSError) as exc:
            self.stop()
            raise SandboxError(str(exc)) from exc
        except BaseException:
            self.stop()
            raise

    def _start_db_clients(self) -> None:
        """The bot's pool, a long report and a forgotten psql session (the Database area's)."""
        from console.sandbox.db_clients import BOT_LOGIN, DbClients, bot_login

        password = _password(self.home, "demo-bot-password")
        asyncio.run(bot_login(self.owner_dsn, password))
        clients = DbClients(self.cluster.dsn(DEMO_DB, user=BOT_LOGIN, password=password))
        clients.start()
        self._stack.callback(clients.stop)

    def _start_fakes(self) -> None:
        from console.sandbox.fake_bot import FakeBot
        from console.sandbox.fake_functions import FakeFunctions
        from console.sandbox.fake_kube import FakeKube, populate
        from console.sandbox.fake_panel import FakePanel
        from console.sandbox.fake_stripe import FakeStripe
        from console.sandbox.stripe_seed import seed_stripe

        # The provisioning functions' stand-in: retried orders really get a server.
        self.functions = FakeFunctions(self.owner_dsn, service_key=secrets.token_urlsafe(16))
        self.payments = FakeStripe(f"sk_test_{secrets.token_hex(12)}", dsn=self.owner_dsn)
        self.panel = FakePanel(f"ptla_{secrets.token_hex(12)}")
        self.kube = FakeKube()  # the AGIS world of the ops manual; the scenario moves it
        self.bot = FakeBot()
        for fake in (self.functions, self.payments, self.panel, self.kube, self.bot):
            fake.start()
            self._stack.callback(fake.stop)
        populate(self.kube)
        self.kubeconfig = self.kube.kubeconfig(self.home / "demo-kubeconfig")
        say(f"loopback fakes: functions {self.functions.url}, Stripe {self.payments.url}, "
            f"panel {self.panel.url}, Kubernetes {self.kube.url}, bot {self.bot.url}")  # fmt: skip
        say(f"stripe: {seed_stripe(self.payments, self.bot.url)}")

    def _start_s3(self) -> None:
        """moto's S3 server in this process (S3Server.store, for seeding and dating objects,
        needs it here), the backups bucket, and the saves bucket with a few thousand saves."""
        from console.sandbox.s3 import S3Server
        from console.sandbox.saves import seed_saves

        self.s3 = S3Server()
        self.s3.start()
        self._stack.callback(self.s3.stop)
        self.s3.create_bucket(self.backups_bucket)
        started = time.perf_counter()
        seeded = seed_saves(self.s3, self.saves_bucket)
        took = f"{seeded:,} saves seeded in {time.perf_counter() - started:.1f} s" if seeded else "kept"
        say(f"S3 (moto) {self.s3.url}: buckets {self.backups_bucket}, {self.saves_bucket} ({took})")
        self._seed_backups()

    def _seed_backups(self) -> None:
        """A week of nightly backups made from the demo database by the real pipeline."""
        from console.sandbox.backups_seed import seed_backups

        assert self.s3 is not None
        started = time.perf_counter()
        key = _password(self.home, "demo-backup-key", make=lambda: secrets.token_hex(32))
        env = {**self.s3.env(self.backups_bucket)}
        made = asyncio.run(seed_backups(self.owner_dsn, self.console_dsn, env, key))
        say(f"backups: {made} ({time.perf_counter() - started:.1f} s)")

    def _stop_postgres(self) -> None:
        with contextlib.suppress(Exception):
            if self.cluster is not None and self.cluster.running():
                self.cluster.stop()
                say("stopped PostgreSQL")

    def stop(self) -> None:
        """Stop everything started, last first; idempotent."""
        self._stack.close()

    def push_stop(self, callback: Callable[[], object]) -> None:
        """Run `callback` first when the sandbox stops (a scenario's own stop)."""
        self._stack.callback(callback)

    def play(self, name: str, *, speed: float = 1.0):
        """Start the scenario called `name` (stopped first when the sandbox stops); returns it.
        Raises KeyError for an unknown name."""
        from console.sandbox.scenarios import scenario

        played = scenario(name, self, speed=speed)
        played.start()
        self.push_stop(played.stop)
        say(f"scenario {name}: {played.summary}")
        return played

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what points at it ---------------------------------------------------------------

    def settings_values(self) -> dict[str, str]:
        """The settings (environment variable names) the console needs to use the sandbox."""
        assert self.functions and self.payments and self.panel and self.bot and self.s3, (
            "start the sandbox first"
        )
        values = {
            "DATABASE_URL": self.console_dsn,
            "PROVISIONER_URL": self.functions.url,
            "OPSCONSOLE_PROVISIONER_KEY": self.functions.service_key,
            "STRIPE_SECRET_KEY": self.payments.secret_key,
            "OPSCONSOLE_STRIPE_API_BASE": self.payments.url,
            "PANEL_URL": self.panel.url,
            "PTERO_APP_KEY": self.panel.app_key,
            "KUBECONFIG": str(self.kubeconfig),
            "OPSCONSOLE_BOT_URL": self.bot.url,
            **self.s3.env(self.backups_bucket),
            "OPSCONSOLE_SAVES_BUCKET": self.saves_bucket,
            "BACKUP_ENCRYPTION_KEY": _password(
                self.home, "demo-backup-key", make=lambda: secrets.token_hex(32)
            ),
            # Restore drills create and drop scratch databases: the owner may, the console's login not.
            "OPSCONSOLE_RESTORE_DSN": self.owner_dsn,
        }
        if self.monitoring:
            values["PROMETHEUS_URL"] = self.monitoring[0].url
            values["ALERTMANAGER_URL"] = self.monitoring[1].url
        return values

    def exports(self) -> dict[str, str]:
        """Every variable a shell needs for `opsconsole`, `psql` and `kubectl` to use the sandbox:
        the console's settings, a config file naming the sandbox and making this user its admin,
        and the PG* variables psql reads (the console's login, as DATABASE_URL has it)."""
        from console.settings import real_user

        config = _write_private(
            self.home / CONFIG_FILE,
            '[environment]\nname = "sandbox"\ncolour = "green"\n\n'
            f'[operators]\n{_toml_key(real_user())} = "admin"\n',
        )
        parts = urlsplit(self.console_dsn)
        values = {
            **self.settings_values(),
            "OPSCONSOLE_CONFIG": str(config),
            "PGHOST": parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port),
            "PGDATABASE": DEMO_DB,
            "PGUSER": CONSOLE_LOGIN,
            "PGPASSWORD": _password(self.home, "demo-console-password"),
        }
        # A shell's settings for a real system must not mix with the sandbox's (a read
        # replica, an S3 bucket, an environment name or a kube context of production).
        for name in UNSET:
            values.setdefault(name, "")
        return values

    def write_env(self) -> Path:
        """Write the exports to `home/sandbox.env` (mode 0600), with this process's id so
        `sandbox --env` knows the sandbox still runs; returns its path."""
        path = self.home / ENV_FILE
        _write_private(path, render_exports(self.exports(), pid=os.getpid()))
        self.push_stop(lambda: path.unlink(missing_ok=True))
        return path


def _toml_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_exports(values: dict[str, str], *, pid: int | None = None) -> str:
    """`export NAME=value` lines (an empty value: `unset NAME`), shell-quoted, after the
    comment saying they hold secrets."""
    lines = [SECRETS_NOTE]
    if pid is not None:
        lines.append(f"# sandbox pid {pid}")
    for name, value in values.items():
        lines.append(f"export {name}={shlex.quote(value)}" if value else f"unset {name}")
    return "\n".join(lines) + "\n"


def running_env(home: Path | None = None) -> str | None:
    """The env file of the sandbox running from `home`, or None when none runs there."""
    path = (Path(home) if home else sandbox_home()) / ENV_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("# sandbox pid "):
            try:
                os.kill(int(line.rsplit(" ", 1)[1]), 0)
            except (ValueError, ProcessLookupError):
                return None
            except PermissionError:
                pass
            return text
    return None
