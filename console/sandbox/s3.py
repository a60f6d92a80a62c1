"""The sandbox's and the tests' S3: moto's S3 protocol server (`ThreadedMotoServer`) on
127.0.0.1 and a free port, in a thread of this process, which aioboto3 talks to over real
HTTP (moto's in-process mock does not reach aioboto3)."""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime

# moto keeps its buckets in module-level state of the process it runs in: every in-process
# S3Server sees the same buckets, and one stopped and started again finds them intact. It
# also keeps what is uploaded in that process's memory (a completed multipart object is
# joined in memory), so `in_process=False` runs it as a child process (`python -m
# moto.server`) where that memory is not ours: for measuring ours, or for big demo data.
SANDBOX_ACCESS_KEY = "opsconsole-sandbox"
SANDBOX_SECRET_KEY = "opsconsole-sandbox-secret"
SANDBOX_REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Server:
    """`start()` serves S3 at `url`; `stop()` closes the listening socket, so a new
    connection is refused as by a stopped server (one kept alive from before is still
    answered: to cut those too, put tests/tcp_proxy.py in front); `start()` again reopens
    the same port.
    moto accepts any credentials; `access_key`/`secret_key` are the ones the sandbox hands
    out, so every client is configured as it would be for Minio."""

    name = "s3"

    def __init__(self, port: int | None = None, *, in_process: bool = True) -> None:
        self.in_process = in_process
        self.host = "127.0.0.1"
        self.port = port or _free_port()
        self.access_key = SANDBOX_ACCESS_KEY
        self.secret_key = SANDBOX_SECRET_KEY
        self.region = SANDBOX_REGION
        self._server = None
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None or self._process is not None

    def start(self, timeout: float = 30.0) -> str:
        """Start serving (idempotent); returns the endpoint URL, http://127.0.0.1:PORT.
        Raises RuntimeError if a child-process server does not answer within `timeout`."""
        if self.running:
            return self.url
        if not self.in_process:
            return self._start_process(timeout)
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request, and adds its own stderr handler to do it: over a TUI.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self._server = server
        return self.url

    def _start_process(self, timeout: float) -> str:
        command = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"moto's S3 server exited at start ({' '.join(command)})")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.2):
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto's S3 server did not listen on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop serving and release the port (idempotent). In process, buckets are kept
        (see above); a child process takes its buckets with it."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() ends the accept loop but leaves the socket listening,
        # where new connections would hang instead of being refused.
        wsgi = getattr(server, "_server", None)
        if wsgi is not None:
            with contextlib.suppress(OSError):
                wsgi.server_close()

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, bucket: str) -> dict[str, str]:
        """The S3_* environment that points opsconsole at this server and `bucket`."""
        return {
            "S3_ENDPOINT": self.url,
            "S3_ACCESS_KEY": self.access_key,
            "S3_SECRET_KEY": self.secret_key,
            "S3_BUCKET": bucket,
            "S3_USE_SSL": "false",
        }

    def client(self):
        """A plain (synchronous) boto3 S3 client for this server: for seeding and tests."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket `name` if it does not exist; returns the name."""
        s3 = self.client()
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    def store(self, bucket: str, objects: Iterable[tuple[str, bytes, datetime | None]]) -> int:
        """Put `objects` (key, body, last modified: None for now) into existing `bucket`
        straight through moto's store in this process, and return how many. For seeding:
        an S3 PUT costs moto ~8 ms of this process's time (3,000 objects: 25 s), this
        ~0.1 ms. The objects are then served like any other. In-process servers only
        (RuntimeError, as for a bucket that does not exist)."""
        backend = self._moto_backend(bucket)
        stored = 0
        for key, body, modified in objects:
            fake = backend.put_object(bucket, key, body)
            if modified is not None:
                fake.last_modified = _moto_time(modified)
            stored += 1
        return stored

    def set_modified(self, bucket: str, key: str, modified: datetime) -> None:
        """Date object `key` (stored by any means) `modified` (aware), as S3 cannot: a week
        of backups made in a second, saves past their retention. In-process servers only;
        RuntimeError, or KeyError for an object that does not exist."""
        self._moto_backend(bucket).get_bucket(bucket).keys[key].last_modified = _moto_time(modified)

    def _moto_backend(self, bucket: str):
        if not self.in_process:
            raise RuntimeError("moto's store is reached in this process only: not a child-process server")
        from moto.s3.models import s3_backends

        try:
            partition, account = s3_backends.bucket_accounts[bucket]
        except KeyError:
            raise RuntimeError(f"no bucket {bucket!r} on this server: create_bucket() first") from None
        return s3_backends[account][partition]


def _moto_time(when: datetime) -> datetime:
    """`when` as moto keeps dates: naive UTC."""
    return when.astimezone(UTC).replace(tzinfo=None)
