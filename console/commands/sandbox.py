"""`opsconsole sandbox`: the demo's backends without the TUI, a scenario playing on them, and
the shell exports that point `opsconsole`, `psql` and `kubectl` at them, until Ctrl+C or SIGTERM."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from console.commands.common import echo, fail

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Where the sandbox keeps its cluster and env file (default: the user's data dir).",
        show_default=False,
    ),
]


def sandbox(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="What happens on it (see --list).")
    ] = "calm",
    reset: Annotated[bool, typer.Option("--reset", help="Throw the database away and reseed it.")] = False,
    env: Annotated[
        bool,
        typer.Option("--env", help="Print the exports of the sandbox running now (for eval) and exit."),
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="Describe each scenario and exit.")] = False,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0.01, max=1000, help="Run the scenario's clock this many times faster."),
    ] = 1.0,
    monitoring: Annotated[
        bool,
        typer.Option(
            "--monitoring/--no-monitoring", help="Start Prometheus and Alertmanager when installed."
        ),
    ] = True,
    home: HomeOption = None,
) -> None:
    """Start the demo's backends without the console and play a scenario on them; print the
    `export` lines that point a shell at them (also written to a file), run until Ctrl+C or
    SIGTERM, then stop all it started. `eval "$(opsconsole sandbox --env)"` in another shell."""
    from console.sandbox.backends import Sandbox, SandboxError, render_exports, running_env, say
    from console.sandbox.scenarios import SCENARIOS

    if list_:
        width = max(map(len, SCENARIOS))
        for name, cls in SCENARIOS.items():
            echo(f"{name.ljust(width)}  {cls.summary}")
        return
    if env:
        text = running_env(home)
        if text is None:
            raise fail(["no sandbox is running here: start one with `opsconsole sandbox`"], 1)
        typer.echo(text, nl=False)
        return
    if scenario not in SCENARIOS:
        raise fail([f"no scenario {scenario!r}; known: {', '.join(SCENARIOS)} (--list describes them)"], 2)

    def stop_on(code: int):
        return lambda *_: sys.exit(code)

    signal.signal(signal.SIGTERM, stop_on(0))
    signal.signal(signal.SIGHUP, stop_on(129))
    box = Sandbox(home, reset=reset, monitoring=monitoring)
    try:
        box.start()
        box.play(scenario, speed=speed)
        path = box.write_env()
        typer.echo(render_exports(box.exports()), nl=False)
        sys.stdout.flush()
        say(f"ready; the exports above are also in {path}: in another shell, "
            f'eval "$(opsconsole sandbox --env{_home_flag(home)})" or . {path}; Ctrl+C stops it')  # fmt: skip
        while True:
            time.sleep(3600)
    except SandboxError as exc:
        raise fail([str(exc)], 1) from None
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl+C or SIGTERM must not cut the stopping short.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        box.stop()
        say("stopped")


def _home_flag(home: Path | None) -> str:
    import shlex

    return f" --home {shlex.quote(str(home))}" if home else ""


def register(cli: typer.Typer) -> None:
    cli.command()(sandbox)
