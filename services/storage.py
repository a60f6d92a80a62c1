"""StorageService: the backup bucket on S3 / Minio through aioboto3 (imported where
first used): ping, streamed multipart upload in constant memory, paged listing, streamed
download, head, delete, and sweeping multipart uploads left behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from services.errors import BackendFailed, NotConfigured, ServiceError, Unreachable
from services.health import Ping
from services.text import mask_url, mask_urls_in

MiB = 1024 * 1024
# S3's limits: every part but the last is at least 5 MiB; an upload has at most 10,000 parts.
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MiB
# Parts are sized for 9,000 of them, not 10,000: an `expected_size` that is an estimate
# (the last backup's size) may be exceeded by 10% before the upload runs out of parts.
PLANNED_PARTS = 9_000


def part_size_for(expected_size: int | None) -> int:
    """The part size for an object of about `expected_size` bytes: max(8 MiB,
    ceil(expected_size / 9000)) rounded up to a whole MiB, so a 1 TB object takes about
    9,000 parts of 112 MiB, under S3's 10,000; 8 MiB when the size is unknown."""
    if not expected_size:
        return DEFAULT_PART_SIZE
    wanted = math.ceil(expected_size / PLANNED_PARTS)
    return max(DEFAULT_PART_SIZE, math.ceil(wanted / MiB) * MiB)


@dataclass(frozen=True)
class UploadResult:
    key: str
    size: int
    parts: int
    part_size: int
    etag: str
    sha256: str  # of the bytes as stored
    seconds: float


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime | None
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


class StorageService:
    backend = "s3"

    def __init__(
        self,
        endpoint: str | None,
        access_key: str | None,
        secret_key: str | None,
        bucket: str | None,
        *,
        use_ssl: bool = True,
        timeout: float = 5.0,
        transfer_timeout: float = 120.0,
        abort_grace: float = 15.0,
    ):
        self.endpoint = endpoint
        self._access_key = access_key
        self._secret_key = secret_key
        self.bucket = bucket
        self.use_ssl = use_ssl
        self.timeout = timeout
        # A part of 100+ MiB takes longer than a ping to go up.
        self.transfer_timeout = transfer_timeout
        # How long a failed upload keeps trying to abort itself when S3 is away, so that a
        # short outage leaves no orphan parts (which S3 bills for and never shows as objects).
        self.abort_grace = abort_grace
        self._session = None

    @property
    def configured(self) -> bool:
        return bool(self.endpoint and self.bucket)

    @property
    def _where(self) -> str:
        return f"S3 at {mask_url(self.endpoint)}"

    def _client(self, read_timeout: float | None = None):
        from botocore.config import Config

        if self._session is None:
            import aioboto3

            # One session for the service's life: a session parses botocore's S3 model
            # (~10 MiB of JSON) once, where a session per call would parse it every time.
            self._session = aioboto3.Session()
        return self._session.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            region_name="us-east-1",
            use_ssl=self.use_ssl,
            config=Config(connect_timeout=self.timeout, read_timeout=read_timeout or self.timeout,
                          retries={"max_attempts": 1}),
        )  # fmt: skip

    def _require(self) -> None:
        if not self.configured:
            raise NotConfigured("S3 is not configured (S3_ENDPOINT and S3_BUCKET)")

    def _error(self, exc: BaseException, doing: str) -> ServiceError:
        """The ServiceError for `exc`, raised by botocore/aiohttp while `doing` (e.g.
        "uploading s3://b/k"); names the endpoint, never its credentials."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        if isinstance(exc, ServiceError):
            return exc
        if isinstance(exc, EndpointConnectionError):  # its text only repeats the URL
            return Unreachable(f"{self._where} cannot be reached ({doing})", backend=self.backend)
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code", "error")
            said = mask_urls_in(str(error.get("Message") or ""), self.endpoint)
            detail = f"{code}: {said}" if said and said != code else code
            return BackendFailed(f"{self._where}: {doing}: {detail}", backend=self.backend)
        if isinstance(exc, BotoCoreError | OSError | asyncio.TimeoutError) or _is_aiohttp_error(exc):
            said = mask_urls_in(str(exc) or type(exc).__name__, self.endpoint)
            return Unreachable(f"{self._where} cannot be reached ({doing}): {said}", backend=self.backend)
        said = mask_urls_in(str(exc), self.endpoint)
        return BackendFailed(f"{self._where}: {doing}: {type(exc).__name__}: {said}", backend=self.backend)

    async def ping(self) -> Ping:
        """HEAD on the backup bucket; raises ServiceError."""
        self._require()
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        started = time.perf_counter()
        try:
            async with self._client() as s3:
                await s3.head_bucket(Bucket=self.bucket)
        except EndpointConnectionError as exc:
            raise Unreachable(f"S3 at {mask_url(self.endpoint)} cannot be reached") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise BackendFailed(f"S3 at {mask_url(self.endpoint)}: bucket {self.bucket!r}: {code}") from exc
        except BotoCoreError as exc:
            said = mask_urls_in(str(exc), self.endpoint)  # botocore quotes the endpoint URL
            raise Unreachable(f"S3 at {mask_url(self.endpoint)}: {said}") from exc
        rtt = (time.perf_counter() - started) * 1000
        return Ping(self.backend, f"bucket {self.bucket} reachable", rtt, mask_url(self.endpoint))

    # -- upload ------------------------------------------------------------------------

    async def upload_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        part_size: int | None = None,
        expected_size: int | None = None,
        metadata: dict[str, str] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> UploadResult:
        """Store the bytes `chunks` yields as object `key`, by a multipart upload in
        constant memory: parts of `part_size` (default `part_size_for(expected_size)`),
        and at most two parts at once, the one going up and the one being filled, each
        spooled to an unnamed temporary file (so memory does not grow with the part size).
        (aioboto3's own transfer manager queues up to 100 chunks of 8 MiB: ~800 MiB.)
        `on_progress(bytes_uploaded)` is called after each part.

        Raises ServiceError on any failure (S3 unreachable or refusing, the source
        raising: a ServiceError from the source keeps its class) after aborting the
        multipart upload, so no parts are left behind; if S3 stays away longer than
        `abort_grace` the message says the upload could not be aborted and its id.
        Cancellation aborts the upload the same way, then propagates."""
        self._require()
        size = part_size or part_size_for(expected_size)
        if size < MIN_PART_SIZE:
            raise ValueError(f"part_size {size} is under S3's minimum of {MIN_PART_SIZE} bytes")
        where = f"s3://{self.bucket}/{key}"
        started = time.perf_counter()
        digest = hashlib.sha256()
        total = 0
        parts: list[dict] = []
        async with self._client(read_timeout=self.transfer_timeout) as s3:
            try:
                created = await s3.create_multipart_upload(
                    Bucket=self.bucket, Key=key, Metadata=dict(metadata or {})
                )
            except Exception as exc:
                raise self._error(exc, f"starting the upload of {where}") from exc
            upload_id = created["UploadId"]

            async def put_part(number: int, body, length: int) -> None:
                try:
                    with body:
                        await asyncio.to_thread(body.seek, 0)
                        answer = await s3.upload_part(
                            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                        )
                except Exception as exc:
                    raise self._error(exc, f"uploading part {number} of {where}") from exc
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                sent[0] += length
                if on_progress is not None:
                    on_progress(sent[0])

            sent = [0]  # bytes stored so far
            in_flight: asyncio.Task | None = None
            # The part being filled is spooled to an unnamed temporary file, and the upload
            # reads it back 256 KiB at a time: memory stays flat whatever the part size (a
            # part held in memory costs ~5x its size once aiohttp has copied it to send).
            # Two parts on disk at most: the one going up and the one being filled.
            part = tempfile.TemporaryFile(prefix="opsconsole-part-")
            filled = 0
            number = 0

            async def send(body, length: int) -> None:
                # Wait for the part going up before starting the next: two parts at most.
                nonlocal in_flight, number
                if in_flight is not None:
                    task, in_flight = in_flight, None
                    await task
                if number + 1 > MAX_PARTS:
                    raise BackendFailed(
                        f"{where}: more than {MAX_PARTS} parts of {size} bytes; "
                        f"give a larger part size or expected size"
                    )
                number += 1
                in_flight = asyncio.ensure_future(put_part(number, body, length))

            try:
                iterator = aiter(chunks)
                while True:
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        break
                    except ServiceError:
                        raise
                    except Exception as exc:
                        raise BackendFailed(
                            f"upload of {where} stopped: its source failed: {type(exc).__name__}: {exc}",
                            backend=self.backend,
                        ) from exc
                    if not chunk:
                        continue
                    digest.update(chunk)
                    total += len(chunk)
                    view = memoryview(chunk)
                    while view:
                        taken = min(len(view), size - filled)
                        await asyncio.to_thread(part.write, view[:taken])
                        filled += taken
                        view = view[taken:]
                        if filled == size:
                            full, filled = part, 0
                            part = tempfile.TemporaryFile(prefix="opsconsole-part-")
                            await send(full, size)
                if filled or number == 0:
                    last, part = part, None
                    await send(last, filled)
                if in_flight is not None:
                    task, in_flight = in_flight, None
                    await task
                parts.sort(key=lambda part: part["PartNumber"])
                try:
                    done = await s3.complete_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                    )
                except Exception as exc:
                    raise self._error(exc, f"completing the upload of {where}") from exc
            except BaseException as exc:
                if part is not None:
                    part.close()
                if in_flight is not None:
                    in_flight.cancel()
                    with contextlib.suppress(BaseException):
                        await in_flight
                # Shielded: a cancelled upload still aborts before the cancellation goes on.
                abort = asyncio.ensure_future(self._abort(s3, key, upload_id))
                try:
                    aborted = await asyncio.shield(abort)
                except asyncio.CancelledError:
                    aborted = await abort
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    raise
                error = exc if isinstance(exc, ServiceError) else self._error(exc, f"uploading {where}")
                note = (
                    "; the partial upload was aborted"
                    if aborted
                    else f"; the partial upload {upload_id} could not be aborted and holds its parts "
                    f"until it is (StorageService.abort_incomplete_uploads, or a lifecycle rule)"
                )
                raise type(error)(str(error) + note, backend=error.backend) from exc
        return UploadResult(
            key=key,
            size=total,
            parts=len(parts),
            part_size=size,
            etag=str(done.get("ETag", "")).strip('"'),
            sha256=digest.hexdigest(),
            seconds=time.perf_counter() - started,
        )

    async def _abort(self, s3, key: str, upload_id: str) -> bool:
        """Abort multipart upload `upload_id`, trying again for `abort_grace` seconds while
        S3 is away; True once aborted (or already gone)."""
        from botocore.exceptions import ClientError

        deadline = time.monotonic() + self.abort_grace
        pause = 0.25
        while True:
            try:
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                return True
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                return code == "NoSuchUpload"
            except Exception:
                if time.monotonic() + pause > deadline:
                    return False
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def abort_incomplete_uploads(self, prefix: str = "") -> int:
        """Abort every multipart upload in progress under `prefix` (what a failed upload
        could not abort itself); returns how many. Raises ServiceError."""
        self._require()
        aborted = 0
        try:
            async with self._client() as s3:
                paginator = s3.get_paginator("list_multipart_uploads")
                async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                    for upload in page.get("Uploads", []):
                        await s3.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except Exception as exc:
            raise self._error(exc, f"aborting uploads under s3://{self.bucket}/{prefix}") from exc
        return aborted

    # -- reading -----------------------------------------------------------------------

    async def list_objects(
        self, prefix: str = "", page_size: int = 1000
    ) -> AsyncIterator[list[StoredObject]]:
        """The objects under `prefix`, in key order, one page of at most `page_size` at a
        time (never the whole bucket in memory). Raises ServiceError. A caller that stops
        early should close it (`contextlib.aclosing`) so its connection goes at once."""
        self._require()
        where = f"listing s3://{self.bucket}/{prefix}"
        try:
            async with self._client() as s3:
                paginator = s3.get_paginator("list_objects_v2")
                pages = paginator.paginate(
                    Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
                )
                async for page in pages:
                    batch = [_stored(item) for item in page.get("Contents", [])]
                    if batch:
                        yield batch
        except GeneratorExit:
            raise
        except Exception as exc:
            raise self._error(exc, where) from exc

    async def list_page(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> tuple[list[StoredObject], bool]:
        """One page of the objects under `prefix`, in key order, after key `start_after`
        (exclusive): (at most `limit` objects, whether more follow). Raises ServiceError."""
        self._require()
        where = f"listing s3://{self.bucket}/{prefix}"
        extra = {"StartAfter": start_after} if start_after else {}
        try:
            async with self._client() as s3:
                page = await s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=limit, **extra)
        except Exception as exc:
            raise self._error(exc, where) from exc
        return [_stored(item) for item in page.get("Contents", [])], bool(page.get("IsTruncated"))

    async def head(self, key: str) -> StoredObject:
        """Size, date, ETag and metadata of object `key`. Raises ServiceError (BackendFailed
        with '404' when there is no such object)."""
        self._require()
        try:
            async with self._client() as s3:
                answer = await s3.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._error(exc, f"reading s3://{self.bucket}/{key}") from exc
        return StoredObject(
            key=key,
            size=int(answer.get("ContentLength", 0)),
            modified=answer.get("LastModified"),
            etag=str(answer.get("ETag", "")).strip('"'),
            metadata=dict(answer.get("Metadata") or {}),
        )

    async def get_stream(self, key: str, chunk_size: int = MiB) -> AsyncIterator[bytes]:
        """The bytes of object `key`, in chunks of at most `chunk_size`, as they arrive.
        Raises ServiceError. Close it when stopping early (`contextlib.aclosing`)."""
        self._require()
        where = f"downloading s3://{self.bucket}/{key}"
        try:
            async with self._client(read_timeout=self.transfer_timeout) as s3:
                answer = await s3.get_object(Bucket=self.bucket, Key=key)
                body = answer["Body"]
                try:
                    while chunk := await body.read(chunk_size):
                        yield chunk
                finally:
                    body.close()
        except GeneratorExit:
            raise
        except Exception as exc:
            raise self._error(exc, where) from exc

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store a small object (a manifest) in one request. Raises ServiceError."""
        self._require()
        try:
            async with self._client() as s3:
                await s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as exc:
            raise self._error(exc, f"writing s3://{self.bucket}/{key}") from exc

    async def get_bytes(self, key: str, limit: int = 4 * MiB) -> bytes:
        """A small object's bytes (a manifest); refuses one over `limit`. Raises ServiceError."""
        out = bytearray()
        async with contextlib.aclosing(self.get_stream(key)) as stream:
            async for chunk in stream:
                out += chunk
                if len(out) > limit:
                    where = f"s3://{self.bucket}/{key}"
                    raise BackendFailed(f"{where} is over {limit} bytes", backend=self.backend)
        return bytes(out)

    async def delete(self, key: str) -> None:
        """Delete object `key` (no error if it is already gone). Raises ServiceError."""
        self._require()
        try:
            async with self._client() as s3:
                await s3.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._error(exc, f"deleting s3://{self.bucket}/{key}") from exc


def _stored(item: dict) -> StoredObject:
    """A listing's entry as a StoredObject."""
    return StoredObject(
        key=item["Key"],
        size=int(item.get("Size", 0)),
        modified=item.get("LastModified"),
        etag=str(item.get("ETag", "")).strip('"'),
    )


def _is_aiohttp_error(exc: BaseException) -> bool:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aioboto3 depends on it
        return False
    return isinstance(exc, aiohttp.ClientError)
