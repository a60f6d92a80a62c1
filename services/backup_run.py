"""Making one backup: pg_dump (custom format, uncompressed) inside an exported snapshot,
compressed and encrypted on a thread of its own as it arrives, uploaded part by part while
the dump goes on; the row count of every table read in that same snapshot. Constant memory:
pg_dump blocks when the bounded queue between the thread and the upload is full."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg

from services.backup_format import DEFAULT_CHUNK_SIZE, BackupKey, BackupWriter
from services.errors import BackendFailed, ServiceError
from services.pgtools import pg_tool, tool_env, tool_error
from services.postgres import explain_failure, named_queries
from services.storage import StorageService, UploadResult
from services.text import human_bytes

READ_SIZE = 1024 * 1024
QUEUE_FRAMES = 4  # frames of <= 4 MiB between the compressing thread and the upload


@dataclass(frozen=True)
class DumpProgress:
    """Where a running backup is: bytes from pg_dump, after zstd, stored in S3."""

    dumped: int
    compressed: int
    uploaded: int
    seconds: float
    expected: int | None  # the last backup's plaintext size, for the ETA

    @property
    def rate(self) -> float:
        return self.dumped / self.seconds if self.seconds > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        if not self.expected:
            return None
        return min(self.dumped / self.expected, 0.99)

    @property
    def eta(self) -> float | None:
        if not self.expected or not self.rate:
            return None
        return max(self.expected - self.dumped, 0) / self.rate

    def line(self) -> str:
        eta = f", ETA {_clock(self.eta)}" if self.eta is not None else ""
        share = f" ({self.fraction:.0%})" if self.fraction is not None else ""
        return (f"dumped {human_bytes(self.dumped)}{share}, compressed {human_bytes(self.compressed)}, "
                f"uploaded {human_bytes(self.uploaded)}, {human_bytes(self.rate)}/s{eta}")  # fmt: skip


class ProgressLine(str):
    """A progress message that also carries how far along it is (for a progress bar)."""

    fraction: float | None = None
    state: DumpProgress | None = None

    @classmethod
    def of(cls, progress: DumpProgress) -> ProgressLine:
        line = cls(progress.line())
        line.fraction = progress.fraction
        line.state = progress
        return line


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Snapshot:
    """What the dump holds, read in the snapshot it is taken in."""

    server_version: str
    tables: dict[str, int]
    audit_head: str


@dataclass(frozen=True)
class Dumped:
    snapshot: Snapshot
    upload: UploadResult
    plaintext_bytes: int
    compressed_bytes: int
    plaintext_sha256: str
    chunks: int
    seconds: float


class _Stopped(Exception):
    pass


_STOP = object()  # what the upload side reads once the pump is stopped


async def dump_to_storage(
    dsn: str,
    storage: StorageService,
    key: str,
    backup_key: BackupKey,
    *,
    where: str,
    expected_size: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    level: int | None = None,
    on_progress: Callable[[DumpProgress], None] | None = None,
    metadata: dict[str, str] | None = None,
) -> Dumped:
    """Dump the database at `dsn` into object `key`, encrypted under `backup_key`. Raises
    ServiceError (pg_dump failing, S3 failing: the multipart upload is aborted, nothing is
    left in the bucket); cancellation kills pg_dump and aborts the upload."""
    started = time.perf_counter()
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except Exception as exc:
        raise explain_failure(exc, where, 10) from exc
    try:
        try:
            tx = conn.transaction(isolation="repeatable_read", readonly=True)
            await tx.start()
            snapshot_id = await conn.fetchval("SELECT pg_export_snapshot()")
            server_version = await conn.fetchval("SHOW server_version")
        except Exception as exc:
            raise explain_failure(exc, where, 10) from exc
        writer = BackupWriter(backup_key, chunk_size, **({"level": level} if level is not None else {}))
        pump = _Pump(dsn, snapshot_id, writer)
        uploaded = [0]

        def report(sent: int | None = None) -> None:
            if sent is not None:
                uploaded[0] = sent
            if on_progress is not None:
                on_progress(DumpProgress(writer.plaintext_bytes, writer.compressed_bytes, uploaded[0],
                                         time.perf_counter() - started, expected_size))  # fmt: skip

        async def counts() -> Snapshot:
            try:
                rows = [r async for r in named_queries().table_row_counts(conn)]
                head = await named_queries().audit_head(conn)
            except Exception as exc:
                raise explain_failure(exc, where, 10) from exc
            return Snapshot(str(server_version), {r["table"]: int(r["rows"]) for r in rows}, head or "")

        pump.start()
        try:
            # The counts run beside the dump, in the same snapshot (a second connection
            # would see later rows); pg_dump has its own connection.
            counting = asyncio.ensure_future(counts())
            upload = await storage.upload_stream(
                key, pump.frames(report), expected_size=_stored_estimate(expected_size),
                metadata=metadata, on_progress=report,
            )  # fmt: skip
            snapshot = await counting
        finally:
            pump.stop()
            if not counting.done():
                counting.cancel()
                with contextlib.suppress(BaseException):
                    await counting
        report()
        return Dumped(snapshot, upload, writer.plaintext_bytes, writer.compressed_bytes,
                      writer.plaintext_sha256, writer.chunks, time.perf_counter() - started)  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)


def _stored_estimate(plaintext: int | None) -> int | None:
    # Parts are sized for the stored size; the plaintext size is an upper bound on it.
    return plaintext


class _Pump:
    """pg_dump's stdout -> BackupWriter on a thread -> a bounded queue of frames. The final
    frame is queued only after pg_dump exited 0: a failed dump never completes an upload."""

    def __init__(self, dsn: str, snapshot_id: str, writer: BackupWriter):
        bare, env = tool_env(dsn, "opsconsole-backup")
        self._dsn = dsn
        self._argv = [pg_tool("pg_dump"), "--format=custom", "--compress=0", f"--snapshot={snapshot_id}",
                      "--no-password", f"--dbname={bare}"]  # fmt: skip
        self._env = env
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._stopping = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stderr = bytearray()
        self._stderr_thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._proc = subprocess.Popen(self._argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          stdin=subprocess.DEVNULL, env=self._env)  # fmt: skip
        except OSError as exc:
            raise BackendFailed(f"pg_dump could not start: {exc.strerror or exc}", backend="backup") from exc
        self._stderr_thread = threading.Thread(target=self._drain, daemon=True, name="pg_dump stderr")
        self._stderr_thread.start()
        self._thread = threading.Thread(target=self._work, daemon=True, name="backup compress+encrypt")
        self._thread.start()

    def _drain(self) -> None:
        assert self._proc and self._proc.stderr
        for line in self._proc.stderr:
            self._stderr += line
            del self._stderr[:-8192]

    def _put(self, item: object) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if self._stopping.is_set():
                    raise _Stopped from None

    def _work(self) -> None:
        assert self._proc and self._proc.stdout
        try:
            self._put(self._writer.header())
            while not self._stopping.is_set():
                data = self._proc.stdout.read(READ_SIZE)
                if not data:
                    break
                for frame in self._writer.feed(data):
                    self._put(frame)
            code = self._proc.wait()
            if self._stderr_thread is not None:
                self._stderr_thread.join(5)
            if code != 0:
                raise tool_error("pg_dump", code, bytes(self._stderr), self._dsn)
            self._put(self._writer.finish())
            self._put(None)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the upload, which aborts
            with contextlib.suppress(_Stopped):
                self._put(exc)

    async def frames(self, report: Callable[[], None]) -> AsyncIterator[bytes]:
        while True:
            item = await asyncio.to_thread(self._get)
            if item is _STOP:
                raise BackendFailed("the backup was stopped", backend="backup")
            if item is None:
                return
            if isinstance(item, BaseException):
                if isinstance(item, ServiceError):
                    raise item
                raise BackendFailed(f"the backup stream failed: {type(item).__name__}: {item}",
                                    backend="backup") from item  # fmt: skip
            report()
            yield item

    def _get(self) -> object:
        # Never blocks for good: a cancelled upload leaves no thread waiting in the executor.
        while True:
            try:
                return self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopping.is_set():
                    return _STOP

    def stop(self) -> None:
        """Kill pg_dump if it still runs and end the thread; idempotent."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(5)
        # Unblock a thread waiting on a full queue.
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        if self._thread is not None:
            self._thread.join(5)
        if proc is not None:
            for stream in (proc.stdout, proc.stderr):
                with contextlib.suppress(Exception):
                    stream and stream.close()
