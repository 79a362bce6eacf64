"""S3-compatible object storage: path-style requests, AWS Signature Version 4, ListObjectsV2 XML.

The query is built already in SigV4's canonical form (sorted, RFC 3986 encoded) and sent exactly
as signed.

>>> put_object_request("models", "bert/config.json", b"{}").path
'/models/bert/config.json'
>>> list_objects_request("models", prefix="bert/").path
'/models?list-type=2&prefix=bert%2F'
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from accelerate_lab.api._errors import MalformedResponse
from accelerate_lab.api._types import HttpRequest, HttpResponse

__all__ = [
    "ObjectInfo",
    "ObjectList",
    "create_bucket_request",
    "delete_object_request",
    "get_object_request",
    "list_buckets_request",
    "list_objects_request",
    "parse_buckets",
    "parse_objects",
    "put_object_request",
    "sigv4_headers",
]


def _enc(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


def _object_path(bucket: str, key: str) -> str:
    return f"/{_enc(bucket)}/{_enc(key, safe='/-_.~')}"


def _query(params: Mapping[str, str]) -> str:
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params.items()))


def put_object_request(
    bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
) -> HttpRequest:
    return HttpRequest("PUT", _object_path(bucket, key), content=data, headers={"content-type": content_type})


def get_object_request(bucket: str, key: str) -> HttpRequest:
    return HttpRequest("GET", _object_path(bucket, key))


def delete_object_request(bucket: str, key: str) -> HttpRequest:
    return HttpRequest("DELETE", _object_path(bucket, key))


def create_bucket_request(bucket: str) -> HttpRequest:
    return HttpRequest("PUT", f"/{_enc(bucket)}", content=b"")


def list_buckets_request() -> HttpRequest:
    return HttpRequest("GET", "/")


def list_objects_request(bucket: str, prefix: str = "", continuation: str | None = None) -> HttpRequest:
    params = {"list-type": "2"}
    if prefix:
        params["prefix"] = prefix
    if continuation:
        params["continuation-token"] = continuation
    return HttpRequest("GET", f"/{_enc(bucket)}?{_query(params)}")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: str


@dataclass(frozen=True)
class ObjectList:
    objects: tuple[ObjectInfo, ...]
    next_token: str | None


def _xml(response: HttpResponse) -> ET.Element:
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise MalformedResponse(f"{response.url}: not S3 XML: {response.content[:200]!r}") from exc
    for element in root.iter():  # drop the namespace: {http://s3.amazonaws.com/doc/2006-03-01/}Key -> Key
        element.tag = element.tag.rpartition("}")[2]
    return root


def parse_objects(response: HttpResponse) -> ObjectList:
    root = _xml(response)
    objects = tuple(
        ObjectInfo(
            c.findtext("Key", ""),
            int(c.findtext("Size", "0")),
            c.findtext("ETag", "").strip('"'),
            c.findtext("LastModified", ""),
        )
        for c in root.findall("Contents")
    )
    truncated = root.findtext("IsTruncated", "false").lower() == "true"
    return ObjectList(objects, root.findtext("NextContinuationToken") if truncated else None)


def parse_buckets(response: HttpResponse) -> list[str]:
    return [b.findtext("Name", "") for b in _xml(response).iter("Bucket")]


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_headers(
    method: str,
    host: str,
    path: str,
    query: str,
    payload_sha256: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    amz_date: str,
    service: str = "s3",
    headers: Mapping[str, str] | None = None,
    s3_payload_header: bool = True,
) -> dict[str, str]:
    """The `x-amz-date`, `x-amz-content-sha256` and `Authorization` headers for one request.
    `path` and `query` are exactly as sent (already encoded); `amz_date` is `YYYYMMDDTHHMMSSZ`.
    `s3_payload_header=False` leaves `x-amz-content-sha256` out (other AWS services)."""
    signed = {
        "host": host,
        "x-amz-date": amz_date,
        **{k.lower(): v.strip() for k, v in (headers or {}).items()},
    }
    if s3_payload_header:
        signed["x-amz-content-sha256"] = payload_sha256
    names = sorted(signed)
    pairs = sorted(tuple(p.partition("=")[::2]) for p in query.split("&") if p)
    canonical = "\n".join(
        [
            method,
            path or "/",
            "&".join(f"{k}={v}" for k, v in pairs),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(
        _hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), amz_date[:8]), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = (
        {"x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
        if s3_payload_header
        else {"x-amz-date": amz_date}
    )
    return {
        **out,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, "
        f"Signature={signature}",
    }
