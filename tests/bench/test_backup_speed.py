"""Backups at a million orders (issue 11, Performance). Side by side in one run, median of 3
interleaved rounds: bare `pg_dump -Fc -Z0 > /dev/null`, the AGIS manual's `pg_dump | gzip >
file`, and BackupsService.run to moto's S3 server; then verify, the restore drill and the
manual's `gunzip < file | psql`. Ours runs in a child process (backup_child.py), so its peak
RSS is its own, and moto in another. Then, on the same data, where ours' time and memory go.
Prints figures and whether each target is met; asserts nothing about time."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from console.sandbox.s3 import S3Server
from services.backup_format import ZSTD_LEVEL
from services.backup_restore import dsn_for_database
from services.pgtools import pg_tool, tool_env
from tests.bench import orders_1m
from tests.conftest import as_runtime

RUNS = 3
KEY = "00" * 16 + "11" * 16  # a raw 32-byte key, as in tests/test_backups.py
CLONE = "bench_backup_1m"
MANUAL_RESTORE = "bench_backup_manual_restore"
BUCKET = "bench-backups"
CHILD = Path(__file__).with_name("backup_child.py")
MB = 1e6  # decimal megabytes throughout, the targets' 150 MB included
CHUNK = 4 * 1024 * 1024  # BackupWriter's chunk size
MiB = 1024 * 1024
TARGET_VS_BARE, TARGET_VS_MANUAL, TARGET_RSS = 1.3, 3.0, 150 * MB


def _sql(dsn: str, *statements: str) -> object:
    """Run `statements` in order on a connection of their own; the last one's value."""

    async def run() -> object:
        conn = await asyncpg.connect(dsn)
        try:
            result = None
            for statement in statements:
                result = await conn.fetchval(statement)
            return result
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def backup_db(pg_cluster) -> Iterator[str]:
    """A copy of the million-order database, dropped at the end: the backups write their
    catalogue into it, and the other benches' database stays as they left it."""
    orders_1m.database(pg_cluster)
    admin = pg_cluster.dsn("postgres")
    version = int(_sql(admin, "SHOW server_version_num"))
    strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""  # no WAL for 300 MB of copy
    _sql(
        admin,
        f'DROP DATABASE IF EXISTS "{CLONE}" WITH (FORCE)',
        f'CREATE DATABASE "{CLONE}" TEMPLATE "{orders_1m.NAME}"{strategy}',
    )
    try:
        yield pg_cluster.dsn(CLONE)
    finally:
        _sql(admin, f'DROP DATABASE IF EXISTS "{CLONE}" WITH (FORCE)')


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server in a process of its own (it keeps every object in its memory)."""
    with S3Server(in_process=False) as server:
        server.create_bucket(BUCKET)
        yield server


# -- measuring -------------------------------------------------------------------------


def _ticks(path: str, fields: slice) -> float:
    try:
        with open(path) as stat:
            values = stat.read().rsplit(")", 1)[1].split()[fields]
    except (OSError, IndexError):
        return 0.0
    return sum(int(v) for v in values) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """CPU seconds the machine's cores have been busy since boot, every process's."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def cluster_cpu(postmaster: int) -> float:
    """CPU seconds of the cluster: the postmaster with every backend it has reaped
    (utime, stime, cutime, cstime), and those still running."""
    total = _ticks(f"/proc/{postmaster}/stat", slice(11, 15))
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == postmaster:
                total += _ticks(f"/proc/{entry.name}/stat", slice(11, 13))
    return total


def tools_cpu() -> float:
    """CPU seconds of this process's reaped children (pg_dump, gzip, psql, ours' child)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


class Runs:
    """Samples by name: wall seconds (`seconds`: ours' own timing where it reports one),
    and the CPU seconds of the client side, the cluster, moto and the whole machine."""

    def __init__(self, postmaster: int, moto: int | None) -> None:
        self.samples: dict[str, list[dict]] = {}
        self._postmaster, self._moto = postmaster, moto

    def _cpu(self) -> dict[str, float]:
        moto = _ticks(f"/proc/{self._moto}/stat", slice(11, 13)) if self._moto else 0.0
        return {"client": tools_cpu(), "postgres": cluster_cpu(self._postmaster), "moto": moto,
                "machine": machine_cpu()}  # fmt: skip

    def measure(self, name: str, run: Callable[[], dict | None]) -> dict:
        before, started = self._cpu(), time.perf_counter()
        found = run() or {}
        found["wall"] = time.perf_counter() - started
        found.setdefault("seconds", found["wall"])
        after = self._cpu()
        for key in after:
            found[f"{key}_cpu"] = after[key] - before[key]
        if "cpu" in found:  # ours: its run and its pg_dump, not the interpreter's start
            found["client_cpu"] = found["cpu"] + found["children_cpu"]
        found["cost_cpu"] = found["client_cpu"] + found["postgres_cpu"] + found["moto_cpu"]
        self.samples.setdefault(name, []).append(found)
        return found

    def median(self, name: str, key: str = "seconds") -> float:
        return statistics.median(s[key] for s in self.samples[name])

    def spread(self, name: str, key: str = "seconds") -> str:
        values = ", ".join(f"{s[key]:.2f}" for s in self.samples[name])
        return f"{self.median(name, key):6.2f} s ({values})"

    def mb(self, name: str, key: str) -> float:
        return self.median(name, key) * 1024 / MB  # from KiB


def bare_dump(dsn: str) -> None:
    bare, env = tool_env(dsn, "bench-bare")
    argv = [pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password", f"--dbname={bare}"]
    subprocess.run(argv, stdout=subprocess.DEVNULL, env=env, check=True)


def manual_script(dsn: str, path: Path) -> dict:
    """The manual's cron line, `pg_dump "$DATABASE_URL" | gzip > file` (plain format, gzip's
    default level), without its `aws s3 cp` afterwards: that would only add to its time."""
    bare, env = tool_env(dsn, "bench-manual")
    script = 'set -o pipefail; "$PG_DUMP" "$DATABASE_URL" | gzip > "$BACKUP_FILE"'
    env = {**env, "PG_DUMP": pg_tool("pg_dump"), "DATABASE_URL": bare, "BACKUP_FILE": str(path)}
    subprocess.run(["bash", "-c", script], env=env, check=True)
    return {"stored": path.stat().st_size}


def manual_restore(owner_dsn: str, path: Path) -> None:
    """The manual's restore, `gunzip < file | psql`, into an empty database (with the
    console's psql flags for a legacy backup: stop at the first error, one transaction)."""
    _sql(
        owner_dsn,
        f'DROP DATABASE IF EXISTS "{MANUAL_RESTORE}" WITH (FORCE)',
        f'CREATE DATABASE "{MANUAL_RESTORE}" TEMPLATE template0',
    )
    try:
        bare, env = tool_env(dsn_for_database(owner_dsn, MANUAL_RESTORE), "bench-manual-restore")
        script = (
            'set -o pipefail; gunzip < "$BACKUP_FILE" | "$PSQL" --no-psqlrc --quiet '
            '--set=ON_ERROR_STOP=1 --single-transaction --output=/dev/null "$DATABASE_URL"'
        )
        env = {**env, "PSQL": pg_tool("psql"), "DATABASE_URL": bare, "BACKUP_FILE": str(path)}
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"the manual's restore failed ({done.returncode}): {done.stderr[-2000:]}")
    finally:
        _sql(owner_dsn, f'DROP DATABASE IF EXISTS "{MANUAL_RESTORE}" WITH (FORCE)')


def ours(s3: S3Server, owner_dsn: str, op: str, **spec) -> dict:
    """One BackupsService call (run, verify, drill, idle) in a child process: its figures,
    and its whole life (interpreter start and imports included) as process_seconds. The
    backup dumps as the console's login role; drills make scratch databases as the owner."""
    spec = {"op": op, "dsn": as_runtime(owner_dsn), "restore_dsn": owner_dsn, "key": KEY,
            "s3": s3.env(BUCKET), **spec}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(CHILD)], input=json.dumps(spec), capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise AssertionError(f"backup child ({op}) failed:\n{done.stderr[-4000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found["process_seconds"] = time.perf_counter() - started
    if found.get("ok") is False or found.get("evidence_ok") is False:
        raise AssertionError(f"backup child ({op}) found a problem: {found}")
    return found


def _met(ok: bool) -> str:
    return "target met" if ok else "target MISSED"


def _runs(pg_cluster, s3: S3Server) -> Runs:
    postmaster = int((pg_cluster.data_dir / "postmaster.pid").read_text().split()[0])
    process = getattr(s3, "_process", None)  # moto's child process, for its CPU seconds only
    return Runs(postmaster, process.pid if process is not None else None)


def _dump_size(dsn: str) -> int:
    bare, env = tool_env(dsn, "bench-size")
    argv = [pg_tool("pg_dump"), "--format=custom", "--compress=0", f"--dbname={bare}"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, env=env) as dump:
        assert dump.stdout is not None
        size = 0
        while block := dump.stdout.read(CHUNK):
            size += len(block)
    return size


def _interleaved(runs: Runs, steps: dict[str, Callable[[], dict | None]]) -> None:
    """RUNS rounds of every step, each step first in its turn."""
    order = list(steps)
    for round_ in range(RUNS):
        for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
            runs.measure(name, steps[name])


# -- the side-by-side run -------------------------------------------------------------


def test_backup_side_by_side(pg_cluster, backup_db, s3, tmp_path: Path):
    runtime = as_runtime(backup_db)  # all three dump as the console's login
    orders = _sql(backup_db, "SELECT count(*) FROM orders")
    size = _dump_size(runtime)
    load_before = os.getloadavg()
    runs = _runs(pg_cluster, s3)
    # Warm-up, not counted: the page cache, moto, and a first catalogued backup (the next
    # ones size their parts and ETA from it, as every nightly backup after the first does).
    bare_dump(runtime)
    ours(s3, backup_db, "run")
    idle = ours(s3, backup_db, "idle")
    gz = tmp_path / "agis_backup.sql.gz"
    _interleaved(runs, {"bare": lambda: bare_dump(runtime), "manual": lambda: manual_script(runtime, gz),
                        "ours": lambda: ours(s3, backup_db, "run")})  # fmt: skip
    latest = runs.samples["ours"][-1]["id"]
    _interleaved(runs, {"verify": lambda: ours(s3, backup_db, "verify", id=latest),
                        "drill": lambda: ours(s3, backup_db, "drill", id=latest),
                        "manual_restore": lambda: manual_restore(backup_db, gz)})  # fmt: skip
    load_after = os.getloadavg()

    bare, manual, mine = runs.median("bare"), runs.median("manual"), runs.median("ours")
    stored, gz_size = runs.median("ours", "stored"), runs.median("manual", "stored")
    rss = runs.median("ours", "peak_rss_kib") * 1024
    cpus = os.cpu_count() or 1
    padding = "the orders alone pass the issue's 150 MB: no padding table"
    if size < 150 * MB:
        padding = "UNDER the issue's 150 MB: the figures below are for a smaller dump"
    print(
        f"\nBackups of a {orders:,}-order database; its pg_dump -Fc -Z0 is {size / MB:.1f} MB ({padding}). "
        f"{cpus} CPUs; load average {load_before[0]:.2f} "
        f"before, {load_after[0]:.2f} after (other work on the machine shares its cores)."
    )
    print(f"Median of {RUNS} interleaved runs (each run in brackets), after one warm-up of (a) and (c):")
    print(f"  (a) bare pg_dump -Fc -Z0 > /dev/null       {runs.spread('bare')}")
    print(f"  (b) manual: pg_dump | gzip > file          {runs.spread('manual')}")
    print(
        f"  (c) ours: BackupsService.run to moto's S3  {runs.spread('ours')}  "
        f"[the child process, interpreter start to exit: {runs.median('ours', 'process_seconds'):.2f} s]"
    )
    print("      CPU seconds each costs (client programs + PostgreSQL + moto; during it, the whole machine):")
    for name, label in (("bare", "(a)"), ("manual", "(b)"), ("ours", "(c)")):
        print(
            f"        {label} {runs.median(name, 'cost_cpu'):5.1f} = {runs.median(name, 'client_cpu'):.1f} "
            f"+ {runs.median(name, 'postgres_cpu'):.1f} + {runs.median(name, 'moto_cpu'):.1f}; "
            f"machine {runs.median(name, 'machine_cpu'):.1f} of {cpus * runs.median(name, 'wall'):.1f}"
        )
    print(
        f"  ours / bare:   {mine / bare:.2f}x (target <= {TARGET_VS_BARE}x): "
        f"{_met(mine <= TARGET_VS_BARE * bare)}"
    )
    print(
        f"  manual / ours: {manual / mine:.2f}x (target >= {TARGET_VS_MANUAL}x): "
        f"{_met(manual >= TARGET_VS_MANUAL * mine)}"
    )
    print(
        f"  size: ours stored {stored / MB:.1f} MB ({stored / size:.1%} of the dump; "
        f"zstd level {ZSTD_LEVEL}, AES-256-GCM) vs the manual's .sql.gz {gz_size / MB:.1f} MB: "
        f"{stored / gz_size:.2f}x "
        "(target: smaller): "
        f"{_met(stored < gz_size)}"
    )
    each = ", ".join(f"{s['peak_rss_kib'] * 1024 / MB:.1f}" for s in runs.samples["ours"])
    print(
        f"  ours' peak RSS (VmHWM of the process running BackupsService.run; pg_dump, moto not counted): "
        f"{rss / MB:.1f} MB ({each}); the same process idle, S3 client made: "
        f"{idle['peak_rss_kib'] * 1024 / MB:.1f} MB (target <= {TARGET_RSS / MB:.0f} MB): "
        f"{_met(rss <= TARGET_RSS)}"
    )
    print(
        f"  verify (download, every chunk's tag, the sha256; nothing on disk): {runs.spread('verify')}, "
        f"peak RSS {runs.mb('verify', 'peak_rss_kib'):.1f} MB"
    )
    drill = {k: statistics.median(s["drill_seconds"][k] for s in runs.samples["drill"])
             for k in runs.samples["drill"][0]["drill_seconds"]}  # fmt: skip
    print(
        f"  restore drill (scratch database, then row counts, amcheck, smoke query): {runs.spread('drill')}: "
        f"download+check {drill['download']:.2f} s, pg_restore -j 4 {drill['restore']:.2f} s, "
        f"evidence {drill['evidence']:.2f} s; peak RSS {runs.mb('drill', 'peak_rss_kib'):.1f} MB"
    )
    manual_back = runs.median("manual_restore")
    print(
        f"  the manual's restore (gunzip < file | psql, into an empty database): "
        f"{runs.spread('manual_restore')}; {manual_back / drill['restore']:.2f}x ours' pg_restore, "
        f"{manual_back / runs.median('drill'):.2f}x ours' whole drill"
    )
    assert stored > 0 and gz_size > 0  # figures, not timings: the targets are printed above


# -- where the time and memory go -----------------------------------------------------


def _longest_stall(call: Callable[[], object]) -> tuple[float, float]:
    """(seconds `call` took on a thread, the longest this thread waited meanwhile to wake
    from a 1 ms sleep): about the call's length when it holds the GIL, a few ms when not."""
    took: list[float] = []
    worker = threading.Thread(target=lambda: took.append(_timed(call)))
    longest = 0.0
    worker.start()
    while worker.is_alive():
        started = time.perf_counter()
        time.sleep(0.001)
        longest = max(longest, time.perf_counter() - started)
    worker.join()
    return took[0], longest


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _stage_speeds(dsn: str) -> list[tuple[str, float, float, float, float]]:
    """Each stage of ours alone on this dump: (stage, MB/s on one thread over its 4 MiB
    chunks, MB it handles per backup, one long call's seconds, the GIL stall meanwhile)."""
    import hashlib

    import zstandard
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    bare, env = tool_env(dsn, "bench-stages")
    argv = [pg_tool("pg_dump"), "--format=custom", "--compress=0", f"--dbname={bare}"]
    dump = memoryview(subprocess.run(argv, stdout=subprocess.PIPE, env=env, check=True).stdout)
    chunks = [dump[i : i + CHUNK] for i in range(0, len(dump), CHUNK)]
    squeezed = [zstandard.ZstdCompressor(level=3).compress(c) for c in chunks]
    aead, nonce = AESGCM(os.urandom(32)), os.urandom(12)
    stages = (
        ("zstd level 3", zstandard.ZstdCompressor(level=3).compress, chunks, 32),
        ("zstd level 1 (as is)", zstandard.ZstdCompressor(level=1).compress, chunks, 64),
        ("AES-256-GCM (of zstd's output)", lambda c: aead.encrypt(nonce, c, b"header"), squeezed, 0),
        ("sha256 (of the dump)", lambda c: hashlib.sha256(c).digest(), chunks, 0),
    )
    found = []
    for name, work, data, long_mib in stages:
        one = _timed(lambda work=work, data=data: [work(c) for c in data])
        # One call long enough to see whether it lets other threads run meanwhile.
        piece = dump[: long_mib * MiB] if long_mib else dump
        call, stall = _longest_stall(lambda work=work, piece=piece: work(piece))
        total = sum(len(c) for c in data)
        found.append((name, total / one / MB, total / MB, call, stall))
    return found


def _row_counts_seconds(dsn: str) -> float:
    """The manifest's row counts (every table, in one snapshot) alone: what the backup's
    second connection asks of PostgreSQL beside the dump."""
    from services.postgres import named_queries

    async def run() -> float:
        conn = await asyncpg.connect(dsn)
        try:
            started = time.perf_counter()
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                [r async for r in named_queries().table_row_counts(conn)]
            return time.perf_counter() - started
        finally:
            await conn.close()

    return asyncio.run(run())


AS_IS, THIRTY_TWO = "as is (zstd 3, 8 MiB parts)", "32 MiB parts"
SPOOLED, SPOOLED_32 = "parts spooled to a temp file", "32 MiB parts spooled"
AS_FILE = "parts handed over as a file"
VARIANTS = {
    AS_IS: {},
    "zstd level 1": {"level": 1},
    "no S3: frames drained, not uploaded": {"knobs": {"null_upload": True}},
    "no S3, zstd level 1": {"level": 1, "knobs": {"null_upload": True}},
    "queue of 16 frames, not 4": {"knobs": {"queue_frames": 16}},
    AS_FILE: {"knobs": {"file_body": True}},
    SPOOLED: {"knobs": {"spool_parts": True}},
    THIRTY_TWO: {"knobs": {"part_size": 32 * MiB}},
    SPOOLED_32: {"knobs": {"part_size": 32 * MiB, "spool_parts": True}},
    "zstd 1 + parts spooled": {"level": 1, "knobs": {"spool_parts": True}},
}


def test_backup_where_the_time_and_memory_go(pg_cluster, backup_db, s3):
    runtime = as_runtime(backup_db)
    print(
        "\nWhere ours' time and memory go (same database; each change is a monkeypatch in the child "
        "process, services/ untouched):"
    )
    print("  each stage alone on one thread; does a long call of it hold the GIL (stall ~ call)?")
    for name, speed, handled, call, stall in _stage_speeds(runtime):
        print(
            f"    {name:31s} {speed:6.0f} MB/s x {handled:5.1f} MB = {handled / speed:4.2f} s per backup; "
            f"a {call * 1000:4.0f} ms call stalls other threads {stall * 1000:3.0f} ms: "
            f"{'holds' if stall > call / 2 else 'releases'} the GIL"
        )
    print(f"  the manifest's row counts alone, in a snapshot: {_row_counts_seconds(runtime):.2f} s")
    runs = _runs(pg_cluster, s3)
    bare_dump(runtime)  # warm
    steps: dict[str, Callable[[], dict | None]] = {"bare": lambda: bare_dump(runtime)}
    for name, variant in VARIANTS.items():
        steps[name] = lambda variant=variant: ours(s3, backup_db, "run", instrument=True, **variant)
    _interleaved(runs, steps)
    bare = runs.median("bare")
    print(
        f"  median of {RUNS} interleaved runs; bare pg_dump -Fc -Z0: {bare:.2f} s, "
        f"{runs.median('bare', 'cost_cpu'):.1f} CPU s. 'CPU s' is all of a run's (ours: this process and "
        "its pg_dump; pg: PostgreSQL; moto); 'parts' and 'compl' the seconds awaiting UploadPart and "
        "CompleteMultipartUpload; 'pump' is the compress+encrypt thread: "
        "sealing chunks (its CPU) / blocked on the full queue / waiting for pg_dump; "
        "'tail' is the run's time outside the pump (connect and snapshot; the last part, "
        "complete, manifest, catalogue)"
    )
    print(
        f"  {'variant':36s} {'run s':>6s} {'/bare':>6s} {'RSS MB':>6s} {'stored':>6s} {'CPU s':>5s} "
        f"{'ours':>5s} {'pg':>5s} {'moto':>5s} {'parts':>5s} {'compl':>5s} {'tail':>5s}  "
        "pump: seal(cpu) / blocked / pg_dump"
    )
    for name in VARIANTS:
        samples = runs.samples[name]
        pump = {k: statistics.median(s["pump"][k] for s in samples) for k in samples[0]["pump"]}
        api = {k: statistics.median(s["api"].get(k, 0.0) for s in samples)
               for k in ("UploadPart", "CompleteMultipartUpload")}  # fmt: skip
        seconds = runs.median(name)
        reading = pump["thread_wall"] - pump["feed_wall"] - pump["put_wall"]
        print(
            f"  {name:36s} {seconds:6.2f} {seconds / bare:5.2f}x {runs.mb(name, 'peak_rss_kib'):6.1f} "
            f"{runs.median(name, 'stored') / MB:6.1f} {runs.median(name, 'cost_cpu'):5.1f} "
            f"{runs.median(name, 'client_cpu'):5.1f} {runs.median(name, 'postgres_cpu'):5.1f} "
            f"{runs.median(name, 'moto_cpu'):5.1f} "
            f"{api['UploadPart']:5.2f} {api['CompleteMultipartUpload']:5.2f} "
            f"{seconds - pump['thread_wall']:5.2f}  {pump['feed_wall']:.2f}({pump['feed_cpu']:.2f}) / "
            f"{pump['put_wall']:.2f} / {reading:.2f}"
        )
    _memory_at_scale(runs)
    for name in (AS_FILE, SPOOLED):  # the suggested upload changes still store good backups
        checked = ours(s3, backup_db, "verify", id=runs.samples[name][-1]["id"])
        print(f"  a backup uploaded with {name} verifies: {checked['ok']}")
        assert checked["ok"]


def _memory_at_scale(runs: Runs) -> None:
    """What the measured RSS per MiB of part size means for a bigger database, whose parts
    StorageService sizes from the last backup's plaintext bytes (part_size_for)."""
    from services.storage import part_size_for

    print("  peak RSS against part size (parts are sized from the last backup's plaintext size):")
    for small, big in ((AS_IS, THIRTY_TWO), (SPOOLED, SPOOLED_32)):
        at_8, at_32 = runs.mb(small, "peak_rss_kib"), runs.mb(big, "peak_rss_kib")
        per_mib = (at_32 - at_8) / 24
        projected = []
        for dump in (100e9, 1e12):
            part = part_size_for(int(dump)) / MiB
            rss = at_8 + per_mib * (part - 8)
            projected.append(f"{dump / 1e9:,.0f} GB dump: {part:.0f} MiB parts, {rss:.0f} MB")
        print(
            f"    {small.split(' (')[0]:29s} {at_8:5.1f} MB at 8 MiB, {at_32:5.1f} MB at 32 MiB: "
            f"{per_mib:+.1f} MB per MiB of part; projected: {'; '.join(projected)}"
        )
