"""S3-compatible object storage (AWS S3, MinIO, Ceph, rclone serve s3, ...) with SigV4, multiplexed over
several endpoints by round-robin or least-loaded, each endpoint with its own circuit breaker.

Settings: `s3_kit_api_url` (one URL, a comma-separated list, or a list), `s3_kit_access_key` and
`s3_kit_secret_key` (else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`), `s3_kit_region`
(default us-east-1), `load_balancing`.

>>> from accelerate_lab.api import create_api_backend
>>> s3 = create_api_backend("s3_kit", metadata={"s3_kit_api_url": "http://a:9000,http://b:9000",
...     "s3_kit_access_key": "AK", "s3_kit_secret_key": "SK", "load_balancing": "least_loaded"})
>>> s3
<S3KitBackend s3_kit url=http://a:9000,http://b:9000 key=********>
"""

from __future__ import annotations

import datetime
import hashlib
import os

import httpx

from accelerate_lab.api._base import ApiBackend, Settings
from accelerate_lab.api._secret import Secret
from accelerate_lab.api._transport import Signer
from accelerate_lab.api._types import HttpResponse, Priority
from accelerate_lab.api.protocols import s3 as proto
from accelerate_lab.api.protocols.s3 import ObjectInfo, ObjectList

__all__ = ["Backend", "ObjectInfo", "S3KitBackend"]

P = Priority.NORMAL


def _etag(response: HttpResponse) -> str:
    return response.headers.get("etag", "").strip('"')


def _body(response: HttpResponse) -> bytes:
    return response.content


def _nothing(response: HttpResponse) -> None:
    return None


class S3KitBackend(ApiBackend):
    name = "s3_kit"
    default_url = "http://localhost:9000"

    def _setup(self, metadata: Settings) -> None:
        access = self._setting(metadata, "access_key", ("AWS_ACCESS_KEY_ID",)) or ""
        secret = self._setting(metadata, "secret_key", ("AWS_SECRET_ACCESS_KEY",))
        self.access_key = Secret(access)
        if secret:
            self.api_key = Secret(secret)
        self.region = str(metadata.get("s3_kit_region") or os.environ.get("AWS_REGION", "us-east-1"))

    def auth_headers(self) -> dict[str, str]:
        return {}

    def secrets(self) -> list[Secret]:
        return [self.api_key, self.access_key]

    def signer(self) -> Signer | None:
        if not self.api_key:
            return None  # anonymous access (public buckets)

        def sign(request: httpx.Request) -> None:
            path, _, query = request.url.raw_path.decode("ascii").partition("?")
            amz_date = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
            request.headers.update(
                proto.sigv4_headers(
                    request.method,
                    request.headers["host"],
                    path,
                    query,
                    hashlib.sha256(request.content).hexdigest(),
                    access_key=self.access_key.reveal(),
                    secret_key=self.api_key.reveal(),
                    region=self.region,
                    amz_date=amz_date,
                )
            )

        return sign

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        priority: Priority = P,
        timeout: float | None = None,
    ) -> str:
        """Stores `data`; returns the object's ETag."""
        return self._call(proto.put_object_request(bucket, key, data, content_type), _etag, priority, timeout)

    async def aput(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        priority: Priority = P,
        timeout: float | None = None,
    ) -> str:
        return await self._acall(
            proto.put_object_request(bucket, key, data, content_type), _etag, priority, timeout
        )

    def get(self, bucket: str, key: str, *, priority: Priority = P, timeout: float | None = None) -> bytes:
        return self._call(proto.get_object_request(bucket, key), _body, priority, timeout)

    async def aget(
        self, bucket: str, key: str, *, priority: Priority = P, timeout: float | None = None
    ) -> bytes:
        return await self._acall(proto.get_object_request(bucket, key), _body, priority, timeout)

    def delete(self, bucket: str, key: str, *, priority: Priority = P, timeout: float | None = None) -> None:
        self._call(proto.delete_object_request(bucket, key), _nothing, priority, timeout)

    async def adelete(
        self, bucket: str, key: str, *, priority: Priority = P, timeout: float | None = None
    ) -> None:
        await self._acall(proto.delete_object_request(bucket, key), _nothing, priority, timeout)

    def list_objects(
        self, bucket: str, prefix: str = "", *, priority: Priority = P, timeout: float | None = None
    ) -> list[ObjectInfo]:
        """Every object under `prefix` (follows continuation tokens)."""
        out: list[ObjectInfo] = []
        token: str | None = None
        while True:
            page: ObjectList = self._call(
                proto.list_objects_request(bucket, prefix, token), proto.parse_objects, priority, timeout
            )
            out.extend(page.objects)
            if not (token := page.next_token):
                return out

    async def alist_objects(
        self, bucket: str, prefix: str = "", *, priority: Priority = P, timeout: float | None = None
    ) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        token: str | None = None
        while True:
            page = await self._acall(
                proto.list_objects_request(bucket, prefix, token), proto.parse_objects, priority, timeout
            )
            out.extend(page.objects)
            if not (token := page.next_token):
                return out

    def create_bucket(self, bucket: str, *, priority: Priority = P, timeout: float | None = None) -> None:
        self._call(proto.create_bucket_request(bucket), _nothing, priority, timeout)

    async def acreate_bucket(
        self, bucket: str, *, priority: Priority = P, timeout: float | None = None
    ) -> None:
        await self._acall(proto.create_bucket_request(bucket), _nothing, priority, timeout)

    def list_buckets(self, *, priority: Priority = P, timeout: float | None = None) -> list[str]:
        return self._call(proto.list_buckets_request(), proto.parse_buckets, priority, timeout)

    async def alist_buckets(self, *, priority: Priority = P, timeout: float | None = None) -> list[str]:
        return await self._acall(proto.list_buckets_request(), proto.parse_buckets, priority, timeout)


Backend = S3KitBackend
