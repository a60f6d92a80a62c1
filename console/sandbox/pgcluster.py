"""A throwaway PostgreSQL cluster from the machine's own server binaries (or the `pgserver`
wheel where there are none), for the demo and the test suite.

It listens on 127.0.0.1 only, never on a Unix socket, and remembers its port so a second
start adopts the running server instead of starting another. As root, the server runs as
the `postgres` OS user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SYSTEM_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"  # the OS user the server runs as when we are root
PORT_FILE = "opsconsole.port"
LOG_FILE = "opsconsole-server.log"


class PostgresBinariesNotFound(RuntimeError):
    """Neither the system's PostgreSQL server nor the pgserver wheel is installed."""


class ClusterError(RuntimeError):
    """initdb, start or stop failed; the message says what to look at."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_pg_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/N/bin holding a server, else the pgserver wheel's."""
    system = [p for p in Path("/").glob(SYSTEM_BIN_GLOB.lstrip("/")) if (p / "postgres").exists()]
    if system:
        return max(system, key=_version_key)
    try:
        import pgserver  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        wheel = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (wheel / "postgres").exists():
            return wheel
    raise PostgresBinariesNotFound(
        "no PostgreSQL server binaries: install the Debian package postgresql "
        "or the pgserver wheel (pip install '.[embedded]'; `make setup` does this)"
    )


def make_private_tmpdir(prefix: str) -> Path:
    """A fresh temporary directory the server user can reach (0755), for test clusters."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _as_root() -> bool:
    return os.geteuid() == 0


@dataclass
class EmbeddedPostgres:
    """One cluster in `data_dir`. `password=None` means trust authentication (tests)."""

    data_dir: Path
    port: int | None = None
    user: str = "opsconsole"
    password: str | None = field(default=None, repr=False)
    bin_dir: Path | None = None
    fast: bool = True  # fsync off: for data that can be rebuilt, never for real data

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()

    # -- running binaries -------------------------------------------------------------

    def _bin(self, name: str) -> str:
        if self.bin_dir is None:
            self.bin_dir = find_pg_bin_dir()
        return str(self.bin_dir / name)

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if _as_root():
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, cwd="/", check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{Path(args[0]).name} did not finish within {timeout:.0f} s") from exc
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise ClusterError(f"{Path(args[0]).name} failed: {' / '.join(detail[-3:]) or 'no output'}")
        return result

    def has_library(self, name: str) -> bool:
        """Whether the server binaries come with the loadable module `name` (contrib)."""
        lib = Path(self._bin("postgres")).parent.parent / "lib"
        return (lib / f"{name}.so").exists() or (lib / "postgresql" / f"{name}.so").exists()

    def _prepare_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if not _as_root():
            return
        try:
            shutil.chown(self.data_dir, user=SERVER_USER)
        except LookupError as exc:
            raise ClusterError(
                f"running as root needs the OS user {SERVER_USER!r} to own the server; "
                "install the postgresql package or run as an ordinary user"
            ) from exc
        for parent in self.data_dir.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise ClusterError(
                    f"{parent} is not reachable by the {SERVER_USER} user (needs o+x); "
                    "choose a data directory elsewhere"
                )

    # -- lifecycle --------------------------------------------------------------------

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> bool:
        """Create the cluster unless it exists. Returns True when it was created now."""
        if self.initialized():
            return False
        self._prepare_dir()
        args = [self._bin("initdb"), "-D", str(self.data_dir), "-U", self.user, "-E", "UTF8", "--locale=C"]
        pwdir: Path | None = None
        try:
            if self.password is None:
                args.append("--auth=trust")
            else:
                pwdir = make_private_tmpdir("opsconsole-pw-")
                pwfile = pwdir / "pw"
                pwfile.write_text(self.password + "\n")
                pwfile.chmod(0o600)
                if _as_root():
                    shutil.chown(pwfile, user=SERVER_USER)
                args += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
            self._run(*args, "--no-sync", timeout=120)
        finally:
            if pwdir is not None:
                shutil.rmtree(pwdir, ignore_errors=True)
        return True

    def running(self) -> bool:
        if not self.initialized():
            return False
        return self._run(self._bin("pg_ctl"), "status", "-D", str(self.data_dir), check=False).returncode == 0

    def _running_port(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, IndexError, ValueError):
            return int(pidfile.read_text().splitlines()[3])
        return None

    def _choose_port(self) -> int:
        if self.port is not None:
            return self.port
        remembered = self.data_dir / PORT_FILE
        with contextlib.suppress(OSError, ValueError):
            port = int(remembered.read_text())
            if not _port_taken(port):
                return port
        port = _free_port()
        remembered.write_text(f"{port}\n")
        return port

    def start(self, timeout: float = 20) -> None:
        """Start the server (or adopt it if it is already running) and wait until it accepts."""
        if not self.initialized():
            raise ClusterError(f"no cluster in {self.data_dir}: run init() first")
        if self.running():
            self.port = self._running_port() or self.port
            return
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():  # left by a crash; pg_ctl status already said nobody holds it
            stale.unlink()
        self.port = self._choose_port()
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            "-c unix_socket_directories=''",
        ]
        if self.fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        if self.has_library("pg_stat_statements"):  # the Database area's Slow queries tab
            options.append("-c shared_preload_libraries=pg_stat_statements")
        log = self.data_dir / LOG_FILE
        result = self._run(
            self._bin("pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(int(timeout)),
            "-l",
            str(log),
            "-o",
            " ".join(options),
            check=False,
            timeout=timeout + 10,
        )
        if result.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                lines = [line for line in log.read_text().splitlines() if line.strip()]
                tail = " / ".join(lines[-3:])
            raise ClusterError(f"PostgreSQL did not start on 127.0.0.1:{self.port}: {tail or result.stderr}")

    def stop(self) -> None:
        """Stop the server if it runs; a no-op otherwise."""
        if self.running():
            self._run(self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def dsn(self, dbname: str = "postgres", *, user: str | None = None, password: str | None = None) -> str:
        """A DSN on 127.0.0.1 for `dbname`, as the cluster's owner unless `user` (and its
        `password`) are given."""
        if self.port is None:
            raise ClusterError("the cluster has not been started")
        auth = quote(user or self.user, safe="")
        secret = password if user else self.password
        if secret is not None:
            auth += ":" + quote(secret, safe="")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def __enter__(self) -> EmbeddedPostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
