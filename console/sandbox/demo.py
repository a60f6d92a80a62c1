"""`opsconsole demo`: the sandbox (the embedded PostgreSQL, migrated and seeded, the loopback
fakes, Prometheus and Alertmanager, a scenario) with the console opened on it, connected as a
runtime login role (a member of ops_runtime); everything stops when the console closes."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from console.sandbox.backends import CONSOLE_LOGIN, DEMO_DB, Sandbox, SandboxError, console_login, say

__all__ = ["CONSOLE_LOGIN", "DEMO_DB", "DEMO_SCENARIO", "console_login", "run_demo"]

# What the README's demo shows: production's bot crash-looping while players come and go.
DEMO_SCENARIO = "crash-loop"


def run_demo(
    *, reset: bool = False, read_only: bool = False, scenario: str = DEMO_SCENARIO, home: Path | None = None
) -> int:
    """Start the sandbox, run the console on it, stop the sandbox. Returns the exit code."""
    from console.settings import Settings, real_user
    from console.tui import require_terminal, run_tui

    require_terminal()  # before minutes of seeding, not after
    # A closed SSH session (SIGHUP) or a kill (SIGTERM) must still stop the backends.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    sandbox = Sandbox(home, reset=reset)
    try:
        sandbox.start()
        sandbox.play(scenario)
        say(f"the same backends from another shell: eval \"$(opsconsole sandbox --env)\" "
            f"(or . {sandbox.write_env()})")  # fmt: skip
        settings = Settings.isolated(
            **sandbox.settings_values(),
            environment={"name": "demo", "colour": "green"},
            operators={real_user(): {"role": "admin"}},
        ).resolved()
        run_tui(settings, read_only=read_only, dry_run=False)
        return 0
    except SandboxError as exc:
        say(str(exc))
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sandbox.stop()
