"""The transfer path's server extension in a real Jupyter server on 127.0.0.1: authentication (token or
cookie + XSRF), single-use tokens, slot size limits, and bytes equal both ways."""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import importlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from accelerate_lab.widgets.transfer_spool import Spool
from tests.browser.test_jupyterlab import _free_port

EXTENSION = "{'accelerate_lab.widgets.transfer_server': True}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Spool]]:
    """A Jupyter server with the extension; yields its transfer URL, its token and the shared spool."""
    root = tmp_path_factory.mktemp("server")
    spool = Spool(root / "spool")
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}"]
    command += [
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    command += [f"--ServerApp.jpserver_extensions={EXTENSION}", "--allow-root"]
    env = {**os.environ, "JUPYTER_PLATFORM_DIRS": "1", "ACCELERATE_LAB_SPOOL": str(spool.root)}
    with (root / "server.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                    break
                assert process.poll() is None and time.monotonic() < deadline, (
                    root / "server.log"
                ).read_text()
                time.sleep(0.3)
            yield f"http://127.0.0.1:{port}/accelerate-lab/transfer", token, spool
        finally:
            process.terminate()
            process.wait(timeout=20)


def _call(
    url: str,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.server
@pytest.mark.slow
def test_get_streams_an_offered_file_once(server: tuple[str, str, Spool]) -> None:
    url, token, spool = server
    data = np.random.default_rng().standard_normal(3 * 2**20).astype(np.float32)  # 12 MiB
    offered = spool.offer(data.data.cast("B"))
    auth = {"Authorization": f"token {token}"}
    assert _call(f"{url}/{offered}")[0] == 403  # no credentials
    status, body = _call(f"{url}/{offered}", headers=auth)
    assert status == 200 and np.array_equal(np.frombuffer(body, np.float32), data)
    assert _call(f"{url}/{offered}", headers=auth)[0] == 404  # single use
    assert not list(spool.root.glob(f"{offered}*"))  # removed once sent
    assert _call(f"{url}/{secrets.token_urlsafe(32)}", headers=auth)[0] == 404  # unknown token


@pytest.mark.server
@pytest.mark.slow
def test_put_fills_a_slot_once_within_its_limit(server: tuple[str, str, Spool]) -> None:
    url, token, spool = server
    data = np.random.default_rng().integers(0, 256, 5 * 2**20 + 3, dtype=np.uint8).tobytes()
    auth = {"Authorization": f"token {token}", "Content-Type": "application/octet-stream"}
    slot = spool.slot(len(data))
    # refusals come before the body is read: small bodies, which the socket takes whole
    assert _call(f"{url}/{slot}", "PUT", b"abc")[0] == 403  # no credentials
    assert _call(f"{url}/{slot}", "PUT", data, auth)[0] == 204
    assert bytes(spool.take(slot)) == data
    assert _call(f"{url}/{slot}", "PUT", b"abc", auth)[0] == 404  # single use
    assert _call(f"{url}/{secrets.token_urlsafe(32)}", "PUT", b"abc", auth)[0] == 404  # never opened
    small = spool.slot(2)
    assert _call(f"{url}/{small}", "PUT", b"abc", auth)[0] == 413  # over the slot's limit
    with pytest.raises(FileNotFoundError):
        spool.take(small)
    assert not list(spool.root.glob(f"{small}*"))


@pytest.mark.server
@pytest.mark.slow
def test_put_with_the_login_cookie_needs_the_xsrf_header(server: tuple[str, str, Spool]) -> None:
    url, token, spool = server
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = url.rsplit("/accelerate-lab", 1)[0]
    assert _call(f"{base}/api/status?token={token}", opener=opener)[0] == 200  # logs in: cookies set
    _call(f"{base}/login", opener=opener)  # the page that sets _xsrf
    xsrf = {c.name: c.value for c in jar}.get("_xsrf")
    assert xsrf, [c.name for c in jar]
    slot = spool.slot(4)
    assert _call(f"{url}/{slot}", "PUT", b"abcd", opener=opener)[0] == 403  # the cookie alone is not enough
    slot = spool.slot(4)
    assert _call(f"{url}/{slot}", "PUT", b"abcd", {"X-XSRFToken": xsrf}, opener)[0] == 204
    assert bytes(spool.take(slot)) == b"abcd"
    offered = spool.offer(b"xyz")
    assert _call(f"{url}/{offered}", opener=opener) == (200, b"xyz")


def test_the_wheel_enables_the_extension() -> None:
    """The config file the wheel installs into ``etc/jupyter`` names this extension's module."""
    root = Path(__file__).resolve().parents[2]
    config = json.loads((root / "jupyter-config/jupyter_server_config.d/accelerate_lab.json").read_text())
    (name,) = config["ServerApp"]["jpserver_extensions"]
    points = importlib.import_module(name)._jupyter_server_extension_points()
    assert points == [{"module": name}] and config["ServerApp"]["jpserver_extensions"][name] is True
    project = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]
    shared = project["wheel"]["shared-data"]
    assert shared["jupyter-config/jupyter_server_config.d/accelerate_lab.json"].startswith("etc/jupyter/")


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("nbytes", [0, 1, 3, 4097, 2**20 + 3])
def test_bytes_come_back_equal_both_ways_at_odd_sizes(server: tuple[str, str, Spool], nbytes: int) -> None:
    url, token, spool = server
    data = np.random.default_rng().integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    auth = {"Authorization": f"token {token}"}
    offered = spool.offer(data)
    assert _call(f"{url}/{offered}", headers=auth) == (200, data)
    slot = spool.slot(nbytes)
    assert _call(f"{url}/{slot}", "PUT", data, auth)[0] == 204
    assert bytes(spool.take(slot)) == data
    assert not list(spool.root.glob(f"{offered}*")) and not list(spool.root.glob(f"{slot}*"))


@pytest.mark.server
@pytest.mark.slow
def test_a_chunked_upload_past_its_limit_is_refused_leaving_no_file(server: tuple[str, str, Spool]) -> None:
    """Without a Content-Length the limit is counted as the bytes come."""
    url, token, spool = server
    slot = spool.slot(2**20)
    host, path = url.removeprefix("http://").split("/", 1)
    connection = http.client.HTTPConnection(host, timeout=30)
    pieces = (bytes(2**18) for _ in range(8))  # 2 MiB in all
    with contextlib.suppress(OSError):  # the server may close before the body has gone
        connection.request("PUT", f"/{path}/{slot}", pieces, {"Authorization": f"token {token}"})
        # tornado's own limit (set to the slot's) refuses it as it reads the chunks: 400, or ours: 413
        assert connection.getresponse().status in (400, 413)
    connection.close()
    _wait_until_gone(spool, slot)
    with pytest.raises(FileNotFoundError):
        spool.take(slot)


@pytest.mark.server
@pytest.mark.slow
def test_an_upload_cut_off_midway_leaves_no_file(server: tuple[str, str, Spool]) -> None:
    url, token, spool = server
    slot = spool.slot(4 * 2**20)
    host, path = url.removeprefix("http://").split("/", 1)
    address, port = host.split(":")
    with socket.create_connection((address, int(port)), timeout=30) as sock:
        head = f"PUT /{path}/{slot} HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {token}\r\n"
        sock.sendall(f"{head}Content-Length: {4 * 2**20}\r\n\r\n".encode() + bytes(2**20))
        deadline = time.monotonic() + 10
        while not list(spool.root.glob(f"{slot}.part")):  # the server is writing the body
            assert time.monotonic() < deadline, list(spool.root.iterdir())
            time.sleep(0.05)
    _wait_until_gone(spool, slot)
    with pytest.raises(FileNotFoundError):
        spool.take(slot)


def _wait_until_gone(spool: Spool, token: str) -> None:
    """The server removes a cut-off upload's file when it sees the connection close."""
    deadline = time.monotonic() + 10
    while found := list(spool.root.glob(f"{token}*")):
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
