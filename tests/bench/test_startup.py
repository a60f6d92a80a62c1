"""Start-up benchmark: process start to the first frame that shows data, median of 5,
against the seeded demo business on the session's PostgreSQL. Target: at most 350 ms.
Prints figures; asserts nothing about time (run with `make bench`)."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from tests.bench.ptyrun import time_to_probe

RUNS = 5


def report(label: str, samples: list[float]) -> None:
    print(
        f"\n{label}: median {statistics.median(samples):.0f} ms"
        f" (min {min(samples):.0f}, max {max(samples):.0f}; runs: {', '.join(f'{s:.0f}' for s in samples)})"
    )


def test_startup_to_first_data_frame(seeded_db, tmp_path: Path):
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "DATABASE_URL": seeded_db,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    probe = tmp_path / "probe"
    # Warm the OS caches and .pyc files once, as any second start on the machine would be.
    time_to_probe([str(bin_dir / "opsconsole")], env, probe)
    time_to_probe([sys.executable, str(Path(__file__).parent / "bare_app.py")], env, probe)

    bare = [
        time_to_probe([sys.executable, str(Path(__file__).parent / "bare_app.py")], env, probe)
        for _ in range(RUNS)
    ]
    console = [time_to_probe([str(bin_dir / "opsconsole")], env, probe) for _ in range(RUNS)]
    report("bare Textual app, start to first frame", bare)
    report("opsconsole, start to first frame with data (target <= 350 ms)", console)
    assert all(s > 0 for s in console)
