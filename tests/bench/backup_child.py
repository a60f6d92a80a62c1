"""The measured side of the backup benchmark: one BackupsService call (run, verify or drill)
in a process of its own, so its peak RSS is the backup's alone (moto's S3 server and the
bench itself are other processes). `python backup_child.py < spec.json` prints one JSON line
of figures. Optional knobs monkeypatch services/ in this process only, for the investigation."""

from __future__ import annotations

import asyncio
import io
import json
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from services import backup_run, storage
from services.backup_format import BackupWriter
from services.backups import BackupsService
from services.postgres import PostgresConfig, PostgresService
from services.storage import StorageService


class PumpClock:
    """Where the compress+encrypt thread spends its time: sealing chunks (wall and that
    thread's CPU), blocked on the full queue to the upload, and the rest (reading pg_dump)."""

    def __init__(self) -> None:
        self.feed_wall = self.feed_cpu = self.put_wall = self.thread_wall = self.thread_cpu = 0.0
        feed, put, work = BackupWriter.feed, backup_run._Pump._put, backup_run._Pump._work
        clock = self

        def timed_feed(writer, data):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return feed(writer, data)
            finally:
                clock.feed_wall += time.perf_counter() - wall
                clock.feed_cpu += time.thread_time() - cpu

        def timed_put(pump, item):
            wall = time.perf_counter()
            try:
                return put(pump, item)
            finally:
                clock.put_wall += time.perf_counter() - wall

        def timed_work(pump):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return work(pump)
            finally:
                clock.thread_wall += time.perf_counter() - wall
                clock.thread_cpu += time.thread_time() - cpu

        BackupWriter.feed, backup_run._Pump._put, backup_run._Pump._work = timed_feed, timed_put, timed_work

    def figures(self) -> dict:
        return {k: round(v, 3) for k, v in vars(self).items()}


class ApiClock:
    """Seconds spent awaiting each S3 operation (upload_part, complete_multipart_upload...)
    and each phase of BackupsService.run around the dump."""

    def __init__(self) -> None:
        from aiobotocore.client import AioBaseClient

        import services.backups as backups

        self.api: dict[str, float] = {}
        self.phases: dict[str, float] = {}
        call = AioBaseClient._make_api_call
        clock = self

        async def timed_call(client, operation_name, api_params):
            started = time.perf_counter()
            try:
                return await call(client, operation_name, api_params)
            finally:
                clock.api[operation_name] = clock.api.get(operation_name, 0.0) + time.perf_counter() - started

        AioBaseClient._make_api_call = timed_call
        for owner, name, label in ((backups, "dump_to_storage", "dump_to_storage"),
                                   (BackupsService, "expected_size", "expected_size"),
                                   (StorageService, "put_bytes", "manifest_put")):  # fmt: skip
            setattr(owner, name, self._timed(getattr(owner, name), label))

    def _timed(self, function, label):
        async def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.phases[label] = self.phases.get(label, 0.0) + time.perf_counter() - started

        return timed

    def figures(self) -> dict:
        return {"api": {k: round(v, 3) for k, v in self.api.items()},
                "phases": {k: round(v, 3) for k, v in self.phases.items()}}  # fmt: skip


def apply_knobs(knobs: dict) -> None:
    """The investigation's changes to services/backup_run.py and storage.py, as patches."""
    if "queue_frames" in knobs:
        backup_run.QUEUE_FRAMES = int(knobs["queue_frames"])
    if "read_size" in knobs:
        backup_run.READ_SIZE = int(knobs["read_size"])
    if "part_size" in knobs:
        size = int(knobs["part_size"])
        storage.part_size_for = lambda expected_size: size
    if knobs.get("file_body"):
        _file_part_bodies()
    if knobs.get("spool_parts"):
        StorageService.upload_stream = _spooled_upload
    if knobs.get("null_upload"):
        # Everything but S3: the frames are drained and counted as upload_stream would.
        import hashlib

        async def drain(self, key, chunks, *, expected_size=None, metadata=None, on_progress=None, **_):
            started, digest, total = time.perf_counter(), hashlib.sha256(), 0
            async for chunk in chunks:
                digest.update(chunk)
                total += len(chunk)
            seconds = time.perf_counter() - started
            return storage.UploadResult(key, total, 0, 0, "", digest.hexdigest(), seconds)

        StorageService.upload_stream = drain


class PartReader(io.RawIOBase):
    """A read-only, seekable file over a part's buffer, without copying it: botocore reads
    it for its checksums and seeks back; aiohttp then sends it in 256 KiB writes."""

    def __init__(self, buffer) -> None:
        self._view = memoryview(buffer)
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, into) -> int:
        n = min(len(into), len(self._view) - self._at)
        into[:n] = self._view[self._at : self._at + n]
        self._at += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: len(self._view)}[whence]
        self._at = max(0, min(base + offset, len(self._view)))
        return self._at

    def tell(self) -> int:
        return self._at

    def __len__(self) -> int:
        return len(self._view)


def _file_part_bodies() -> None:
    """UploadPart's Body handed over as a file (aiohttp then writes it in 256 KiB pieces,
    draining between them) instead of the bytearray (which aiohttp 3.x on Python 3.11 slices,
    joins with the headers and leaves in the transport's buffer: three copies of the part)."""
    from aiobotocore.client import AioBaseClient

    call = AioBaseClient._make_api_call

    async def with_file_body(client, operation_name, api_params):
        if operation_name == "UploadPart" and isinstance(api_params.get("Body"), bytearray):
            api_params = {**api_params, "Body": PartReader(api_params["Body"])}
        return await call(client, operation_name, api_params)

    AioBaseClient._make_api_call = with_file_body


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM), threads included. Not getrusage's
    ru_maxrss: Linux starts that at the RSS of the process that spawned us (the bench, with
    a dump in its memory) when subprocess's vfork+exec replaces its pages with ours."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


async def _spooled_upload(self, key, chunks, *, part_size=None, expected_size=None, metadata=None,
                          on_progress=None):  # fmt: skip
    """upload_stream as the investigation suggests it: each part (ciphertext) is written to
    a temporary file as it fills and uploaded from that file, so memory no longer grows with
    the part size (aiohttp reads a file body 256 KiB at a time). A sketch: no retries; the
    upload is aborted on any failure."""
    import contextlib
    import hashlib
    import tempfile

    size = part_size or storage.part_size_for(expected_size)
    started, digest, total, parts = time.perf_counter(), hashlib.sha256(), 0, []
    async with self._client(read_timeout=self.transfer_timeout) as s3:
        created = await s3.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata=dict(metadata or {}))
        upload_id = created["UploadId"]

        async def put(number: int, spool) -> None:
            with spool:
                spool.seek(0)
                answer = await s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                              PartNumber=number, Body=spool)  # fmt: skip
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})

        in_flight: asyncio.Task | None = None
        spool, filled, number = tempfile.TemporaryFile(), 0, 0

        async def send() -> None:
            nonlocal in_flight, spool, filled, number
            if in_flight is not None:
                await in_flight
            number += 1
            in_flight = asyncio.ensure_future(put(number, spool))
            spool, filled = tempfile.TemporaryFile(), 0

        try:
            async for chunk in chunks:
                digest.update(chunk)
                total += len(chunk)
                view = memoryview(chunk)
                while view:
                    taken = min(len(view), size - filled)
                    spool.write(view[:taken])
                    filled, view = filled + taken, view[taken:]
                    if filled == size:
                        await send()
            if filled or number == 0:
                await send()
            if in_flight is not None:
                await in_flight
            parts.sort(key=lambda part: part["PartNumber"])
            done = await s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})  # fmt: skip
        except BaseException:
            if in_flight is not None:
                in_flight.cancel()
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        finally:
            spool.close()
    return storage.UploadResult(key, total, len(parts), size, str(done.get("ETag", "")).strip('"'),
                                digest.hexdigest(), time.perf_counter() - started)  # fmt: skip


async def main(spec: dict) -> dict:
    apply_knobs(spec.get("knobs", {}))
    # The headline runs are the service as it is; the investigation's runs are timed inside.
    clock = PumpClock() if spec.get("instrument") and spec["op"] == "run" else None
    api = ApiClock() if spec.get("instrument") else None
    s3 = spec["s3"]
    store = StorageService(s3["S3_ENDPOINT"], s3["S3_ACCESS_KEY"], s3["S3_SECRET_KEY"], s3["S3_BUCKET"],
                           use_ssl=False)  # fmt: skip
    postgres = PostgresService(PostgresConfig(dsn=spec["dsn"]))
    service = BackupsService(postgres, store, dsn=spec["dsn"], encryption_key=spec["key"],
                             restore_dsn=spec["restore_dsn"])  # fmt: skip
    out: dict = {"op": spec["op"]}
    try:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        if spec["op"] == "run":
            result = await service.run("bench", level=spec.get("level"))
            out.update(id=result.id, plaintext=result.dumped.plaintext_bytes,
                       compressed=result.dumped.compressed_bytes, stored=result.dumped.upload.size,
                       parts=result.dumped.upload.parts, part_size=result.dumped.upload.part_size,
                       dump_seconds=result.dumped.seconds)  # fmt: skip
        elif spec["op"] == "verify":
            checked = await service.verify(await service.get(spec["id"]))
            out.update(ok=checked.ok, problem=checked.problem, plaintext=checked.plaintext_bytes)
        elif spec["op"] == "drill":
            drill = await service.drill(await service.get(spec["id"]))
            out.update(ok=drill.ok, drill_seconds=drill.seconds, problem=drill.checked.problem,
                       evidence_ok=drill.evidence.ok if drill.evidence else None)  # fmt: skip
        elif spec["op"] == "idle":  # the same process with an S3 client made and used once
            await store.ping()
        else:
            raise ValueError(spec["op"])
        out["seconds"] = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        out["cpu"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    finally:
        await postgres.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["peak_rss_kib"] = peak_rss_kib()
    out["children_cpu"] = children.ru_utime + children.ru_stime  # pg_dump's (or pg_restore's)
    out["threads"] = threading.active_count()
    if clock is not None:
        out["pump"] = clock.figures()
    if api is not None:
        out.update(api.figures())
    return out


if __name__ == "__main__":
    # The spec (with the backup key) comes on stdin: a command line is readable by every user.
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))), flush=True)
