"""Run a program in a pseudo-terminal (as an SSH session would) and time it to a probe file."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from pathlib import Path


def time_to_probe(
    argv: list[str], env: dict[str, str], probe: Path, *, size=(120, 40), timeout=30.0
) -> float:
    """Milliseconds from just before the process starts to the time the program wrote into
    `probe` (it writes time.time() when its first frame with data is on screen, then exits)."""
    probe.unlink(missing_ok=True)
    started = time.time()
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the program
        os.execvpe(argv[0], argv, {**env, "OPSCONSOLE_STARTUP_PROBE": str(probe), "TERM": "xterm-256color"})
    cols, rows = size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    os.read(fd, 65536)
                except OSError:
                    break
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            os.kill(pid, 9)
            raise TimeoutError(f"{argv[0]} did not show data within {timeout} s")
    finally:
        os.close(fd)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return (float(probe.read_text()) - started) * 1000
