"""SigV4 against AWS's published example, and S3 XML parsing."""

from __future__ import annotations

from accelerate_lab.api._types import HttpResponse
from accelerate_lab.api.protocols import s3
from accelerate_lab.api.protocols.s3 import ObjectInfo


def test_signature_matches_the_aws_documented_example() -> None:
    """The IAM ListUsers example of the AWS Signature Version 4 documentation (no S3 payload header)."""
    headers = s3.sigv4_headers(
        "GET",
        "iam.amazonaws.com",
        "/",
        "Version=2010-05-08&Action=ListUsers",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        service="iam",
        amz_date="20150830T123600Z",
        s3_payload_header=False,
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


def test_list_objects_xml() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>1</KeyCount>
<IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr</NextContinuationToken>
<Contents><Key>m/x.bin</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
<ETag>"fba9dede5f27731c9771645a39863328"</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents>
</ListBucketResult>"""
    page = s3.parse_objects(HttpResponse(200, {}, body))
    assert page.objects == (
        ObjectInfo("m/x.bin", 434234, "fba9dede5f27731c9771645a39863328", "2009-10-12T17:50:30.000Z"),
    )
    assert page.next_token == "1ueGcxLPRx1Tr"
    assert (
        s3.list_objects_request("b", "a b/", "t=1").path
        == "/b?continuation-token=t%3D1&list-type=2&prefix=a%20b%2F"
    )
