"""StorageService: the backup bucket on S3 / Minio through aioboto3 (imported where
first used)."""

from __future__ import annotations

import time

from services.errors import BackendFailed, NotConfigured, Unreachable
from services.health import Ping
from services.text import mask_url, mask_urls_in


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
    ):
        self.endpoint = endpoint
        self._access_key = access_key
        self._secret_key = secret_key
        self.bucket = bucket
        self.use_ssl = use_ssl
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return bool(self.endpoint and self.bucket)

    def _client(self):
        import aioboto3
        from botocore.config import Config

        session = aioboto3.Session()
        return session.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            region_name="us-east-1",
            use_ssl=self.use_ssl,
            config=Config(connect_timeout=self.timeout, read_timeout=self.timeout,
                          retries={"max_attempts": 1}),
        )  # fmt: skip

    async def ping(self) -> Ping:
        """HEAD on the backup bucket; raises ServiceError."""
        if not self.configured:
            raise NotConfigured("S3 is not configured (S3_ENDPOINT and S3_BUCKET)")
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
