"""A real Prometheus and Alertmanager (the Debian packages' binaries) on 127.0.0.1 for the
tests and the demo: written configs, a free port kept across restarts, readiness waited
for, logs in their directory, stopped for good on stop()."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

READY_TIMEOUT = 15.0
STOP_GRACE = 10.0


class MonitoringBinariesNotFound(RuntimeError):
    """prometheus / prometheus-alertmanager are not installed."""


class MonitoringFailed(RuntimeError):
    """A server did not start or reload; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_listened_on(port: int) -> bool:
    # SO_REUSEADDR so that connections in TIME_WAIT from the previous run do not count:
    # the servers (Go) bind with it too, and only a live listener blocks them.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _binary(*names: str, package: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise MonitoringBinariesNotFound(
        f"{names[0]} is not installed (Debian package {package}: apt-get install {package}; "
        "`make test` installs it)"
    )


def _yaml_str(value: object) -> str:
    """A YAML single-quoted scalar (paths and targets may hold anything)."""
    return "'" + str(value).replace("'", "''") + "'"


class _Server:
    """One server process; `command()` and `write_config()` come from the subclass."""

    name = "server"

    def __init__(self, root: Path):
        self.root = Path(root).absolute()
        self.port = 0
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.root / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = READY_TIMEOUT) -> str:
        """Start (again, on the same port when it is still free) and wait for /-/ready.
        Returns the base URL; idempotent. Raises MonitoringFailed with the log's tail."""
        if self.running:
            return self.url
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.port or _port_listened_on(self.port):
            self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_config()
        with self._log.open("ab") as log:
            log.write(f"--- {' '.join(self.command())}\n".encode())
            log.flush()
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.root)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise MonitoringFailed(f"{self.name} on {self.url} exited with {code}: {self._tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self.url
            time.sleep(0.05)
        self.stop()
        raise MonitoringFailed(
            f"{self.name} on {self.url} was not ready within {timeout:g} s: {self._tail()}"
        )

    def _tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self._log.read_text(errors="replace").strip().splitlines()[-lines:])
        return f"no log at {self._log}"

    def stop(self) -> None:
        """Stop the process (TERM, then KILL after 10 s) and wait for it; idempotent.
        The port is remembered for the next start()."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AlertmanagerServer(_Server):
    """A single Alertmanager (no gossip) routing everything to a receiver that sends nothing."""

    name = "alertmanager"

    def __init__(self, root: Path):
        super().__init__(root)
        self.binary = _binary("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")

    def write_config(self) -> None:
        (self.root / "alertmanager.yml").write_text(
            "route:\n  receiver: 'null'\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
            "receivers:\n  - name: 'null'\n"
        )

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.root / 'alertmanager.yml'}",
            f"--storage.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip: a single, private instance
        ]


class PrometheusServer(_Server):
    """Prometheus scraping `scrape_targets` (job name -> host:port) every `interval`,
    evaluating `rule_files` as often, and sending alerts to `alertmanager_url`."""

    name = "prometheus"

    def __init__(self, root: Path, *, rule_files: list[Path], scrape_targets: dict[str, str],
                 alertmanager_url: str | None, interval: str = "1s"):  # fmt: skip
        super().__init__(root)
        self.binary = _binary("prometheus", package="prometheus")
        self.rule_files = [Path(p).absolute() for p in rule_files]
        self.scrape_targets = dict(scrape_targets)
        self.alertmanager_url = alertmanager_url
        self.interval = interval

    def write_config(self) -> None:
        lines = [
            "global:",
            f"  scrape_interval: {self.interval}",
            f"  evaluation_interval: {self.interval}",
            "rule_files:" + ("" if self.rule_files else " []"),
            *(f"  - {_yaml_str(p)}" for p in self.rule_files),
            "scrape_configs:" + ("" if self.scrape_targets else " []"),
        ]
        for job, target in self.scrape_targets.items():
            lines += [
                f"  - job_name: {_yaml_str(job)}",
                "    metrics_path: /metrics",
                "    static_configs:",
                f"      - targets: [{_yaml_str(target)}]",
                # The sandbox's ports change from run to run; a stable instance label keeps
                # one series (and one alert) per job across restarts of a kept TSDB.
                f"        labels: {{instance: {_yaml_str(job)}}}",
            ]
        if self.alertmanager_url:
            target = re.sub(r"^https?://", "", self.alertmanager_url).rstrip("/")
            lines += [
                "alerting:",
                "  alertmanagers:",
                "    - static_configs:",
                f"        - targets: [{_yaml_str(target)}]",
            ]
        (self.root / "prometheus.yml").write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]

    def reload(self) -> None:
        """Make the running Prometheus re-read its config and rules (POST /-/reload).
        Raises MonitoringFailed with Prometheus' reason when it rejects them."""
        if not self.running:
            raise MonitoringFailed("prometheus is not running: start() it first")
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            reason = exc.read().decode(errors="replace").strip()
            raise MonitoringFailed(f"prometheus refused the reload ({exc.code}): {reason}") from exc
        except OSError as exc:
            raise MonitoringFailed(f"prometheus on {self.url} did not answer the reload: {exc}") from exc

    def set_rules(self, rule_files: list[Path]) -> None:
        """Load other rule files: the config is rewritten, and reloaded when running."""
        self.rule_files = [Path(p).absolute() for p in rule_files]
        self.write_config()
        if self.running:
            self.reload()


def demo_rules(src: Path, dst: Path, for_: str = "30s") -> Path:
    """Writes to `dst` a copy of the rule file `src` with every rule's `for` set to `for_`
    (the demo's alerts fire within a minute instead of five). Returns `dst`."""
    text = Path(src).read_text()
    try:
        import yaml
    except ImportError:  # a rewrite of `for:` keys only, never inside quoted or block text
        rewritten = re.sub(r"(?m)^(\s*(?:-\s+)?for:[ \t]*)[0-9a-z]+[ \t]*$", rf"\g<1>{for_}", text)
    else:
        doc = yaml.safe_load(text)
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                if "for" in rule:
                    rule["for"] = for_
        header = f"# {Path(src).name} with every `for` set to {for_} (written by demo_rules)\n"
        rewritten = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(rewritten)
    return dst
