"""The `opsconsole` entry point. Opening the TUI is the common case and start-up time is
what an on-call engineer feels, so that path skips the CLI framework and validates the
settings (pydantic, ~120 ms of imports) in a forked child while this process imports
Textual and the first screen. Every other command goes through console.cli."""

from __future__ import annotations

import os
import sys

TUI_FLAGS = ("--read-only", "--dry-run")


def _tui_args(argv: list[str]) -> tuple[str | None, bool, bool] | None:
    """(config path, read_only, dry_run) when argv only opens the TUI, else None."""
    config, read_only, dry_run = None, False, False
    args = iter(argv)
    for arg in args:
        if arg == "--read-only":
            read_only = True
        elif arg == "--dry-run":
            dry_run = True
        elif arg in ("--config", "-c"):
            config = next(args, None)
            if config is None:
                return None
        elif arg.startswith("--config="):
            config = arg.partition("=")[2]
        else:
            return None  # a command, --help, or a typo: console.cli explains
    return config, read_only, dry_run


def _validate_in_child(config: str | None) -> tuple[int, int]:
    """Fork a child that loads and validates the settings and writes them (or the
    problems) as JSON to a pipe. Returns (pid, read end)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    os.close(read_end)
    code = 0
    try:
        import json
        from pathlib import Path

        from console.settings import ConfigError, load_settings

        try:
            # `--config ""` names a file (and is refused) exactly as the command line does.
            payload = "R" + load_settings(None if config is None else Path(config)).resolved().to_json()
        except ConfigError as exc:
            payload = "E" + json.dumps(exc.problems)
        data = payload.encode()
        while data:
            data = data[os.write(write_end, data) :]
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _receive(pid: int, read_end: int) -> str:
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def main() -> None:
    parsed = _tui_args(sys.argv[1:])
    if parsed is None or not hasattr(os, "fork"):
        from console.cli import main as cli_main

        cli_main()
        return
    config, read_only, dry_run = parsed
    pid, read_end = _validate_in_child(config)
    # Meanwhile: the imports the first frame needs.
    import console.app  # noqa: F401
    import screens.overview  # noqa: F401

    reply = _receive(pid, read_end)
    if not reply:  # the child died: let the ordinary path report what went wrong
        from console.cli import main as cli_main

        cli_main()
        return
    if reply[0] == "E":
        import json

        from services.text import inert

        for problem in json.loads(reply[1:]):  # shown as the command line shows them: inert
            print(inert(f"opsconsole: config: {problem}"), file=sys.stderr)
        sys.exit(2)
    from console.resolved import Resolved
    from console.tui import run_tui

    try:
        run_tui(Resolved.from_json(reply[1:]), read_only=read_only, dry_run=dry_run)
    except KeyboardInterrupt:
        sys.exit(130)
