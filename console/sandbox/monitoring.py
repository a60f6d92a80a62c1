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
import urllib.request
from pathlib import Path


class MonitoringBinariesNotFound(RuntimeError):
    """prometheus / prometheus-alertmanager are not installed."""


class MonitoringFailed(RuntimeError):
    """A server did not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(*names: str, package: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise MonitoringBinariesNotFound(
        f"{names[0]} is not installed (Debian package {package}; `make test` installs it)"
    )


class _Server:
    """One server process: `command()` and `config()` come from the subclass."""

    name = "server"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.port = 0
        self.url = ""
        self._process: subprocess.Popen | None = None
        self._log: Path = self.root / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 20.0) -> str:
        """Start (or start again, on the same port); returns the base URL once ready."""
        if self._process is not None and self._process.poll() is None:
            return self.url
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_config()
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.root)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MonitoringFailed(f"{self.name} exited with {self._process.returncode}: {self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self.url
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise MonitoringFailed(f"{self.name} was not ready within {timeout:g} s: {self._tail()}")

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self._log.read_text(errors="replace").strip().splitlines()[-5:])
        return "no log"

    def stop(self) -> None:
        """Stop the process (TERM, then KILL after 10 s); idempotent. The port is kept."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AlertmanagerServer(_Server):
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
            self.binary, f"--config.file={self.root / 'alertmanager.yml'}",
            f"--storage.path={self.root / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip: a single, private instance
        ]  # fmt: skip


class PrometheusServer(_Server):
    name = "prometheus"

    def __init__(self, root: Path, *, rule_files: list[Path], scrape_targets: dict[str, str],
                 alertmanager_url: str | None, interval: str = "1s"):  # fmt: skip
        super().__init__(root)
        self.binary = _binary("prometheus", package="prometheus")
        self.rule_files = [Path(p) for p in rule_files]
        self.scrape_targets = scrape_targets
        self.alertmanager_url = alertmanager_url
        self.interval = interval

    def write_config(self) -> None:
        lines = [
            "global:", f"  scrape_interval: {self.interval}", f"  evaluation_interval: {self.interval}",
            "rule_files:", *(f"  - '{p}'" for p in self.rule_files),
            "scrape_configs:",
        ]  # fmt: skip
        for job, target in self.scrape_targets.items():
            lines += [f"  - job_name: '{job}'", "    metrics_path: /metrics",
                      "    static_configs:", f"      - targets: ['{target}']"]  # fmt: skip
        if self.alertmanager_url:
            target = self.alertmanager_url.removeprefix("http://")
            lines += [
                "alerting:",
                "  alertmanagers:",
                "    - static_configs:",
                f"        - targets: ['{target}']",
            ]
        (self.root / "prometheus.yml").write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [
            self.binary, f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]  # fmt: skip

    def set_rules(self, rule_files: list[Path]) -> None:
        """Load other rule files (config rewritten, then /-/reload)."""
        self.rule_files = [Path(p) for p in rule_files]
        self.write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=5):
            pass


def demo_rules(src: Path, dst: Path, for_: str = "30s") -> Path:
    """A copy of the rule file `src` with every `for:` set to `for_` (the demo's alerts fire
    within a minute instead of five)."""
    text = re.sub(r"(?m)^(\s*for:\s*)\S+\s*$", rf"\g<1>{for_}", Path(src).read_text())
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text)
    return dst
