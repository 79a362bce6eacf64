"""The kernel side of the HTTP transfer path without a server: the probe, large buffers as spool tokens
both ways, and what a failed or cut-off PUT does (a clear error, and no file left in the spool). The
test plays the browser and the server: it reads the files offered and writes those a PUT would."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal.browser_errors import BrowserTransferError
from accelerate_lab.hal.browser_protocol import decode_array
from accelerate_lab.widgets import BrowserDevice
from accelerate_lab.widgets.transfer_spool import Spool

Sent = list[tuple[dict[str, object], list[memoryview]]]


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACCELERATE_LAB_SPOOL", str(tmp_path / "spool"))
    return tmp_path / "spool"


def _capturing(monkeypatch: pytest.MonkeyPatch) -> tuple[BrowserDevice, Sent]:
    """A widget whose messages to the browser land in the list it comes with."""
    widget = BrowserDevice(name="browser:http-test")
    sent: Sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers: sent.append((content, buffers)))
    return widget, sent


@pytest.fixture
async def http_widget(
    monkeypatch: pytest.MonkeyPatch, spool: Path
) -> AsyncIterator[tuple[BrowserDevice, Sent]]:
    """A ready widget whose probe came back intact (the browser GETs the probe and PUTs it back);
    closed after the test, while its event loop still runs (closing settles what is pending)."""
    widget, sent = _capturing(monkeypatch)
    try:
        widget.status = "ready"
        widget._on_msg(widget, {"kind": "hello"}, [])
        probe = sent.pop()[0]
        assert probe["kind"] == "probe" and widget.transfer == "probing"
        _put(spool, str(probe["put"]), _get(spool, str(probe["get"])))
        widget._on_msg(widget, {"kind": "probe", "ok": True, "message": ""}, [])
        assert (widget.transfer, widget.transfer_message) == ("http", "")
        assert not list(spool.iterdir())
        yield widget, sent
    finally:
        widget.close()


def _get(spool: Path, token: str) -> bytes:
    """What the server's GET does: the offered file's bytes, and the file removed."""
    path = spool / f"{token}.get"
    data = path.read_bytes()
    path.unlink()
    return data


def _put(spool: Path, token: str, data: bytes) -> None:
    """What the server's PUT does: the slot claimed, the bytes written."""
    (spool / f"{token}.slot").unlink()
    (spool / f"{token}.put").write_bytes(data)


def _batch(sent: Sent) -> tuple[dict[str, object], str, str]:
    """The one batch sent, the token of its upload and that of its download's slot."""
    (batch,) = [content for content, _ in sent if content.get("kind") == "batch"]
    spooled, slots = batch["spooled"], batch["slots"]
    assert isinstance(spooled, dict) and isinstance(slots, list) and len(spooled) == len(slots) == 1
    return batch, str(next(iter(spooled.values()))), str(slots[0])


async def _round_trip_started(spool: Path, sent: Sent) -> tuple[asyncio.Future[Any], dict[str, object], str]:
    """A 1 MiB tensor sent to the browser and read back, up to the browser's GET of the upload: the
    pending read, its batch and the slot its download's PUT is to fill."""
    data = np.ones(2**20, np.float32)
    pending = asyncio.ensure_future(al.tensor(data, device="browser:http-test").numpy_async())
    await asyncio.sleep(0)
    batch, token, slot = _batch(sent)
    _get(spool, token)
    return pending, batch, slot


@pytest.mark.parametrize("nbytes", [2**20, 5 * 2**20 + 4])
async def test_large_buffers_travel_as_spool_tokens_both_ways(
    http_widget: tuple[BrowserDevice, Sent], spool: Path, nbytes: int
) -> None:
    widget, sent = http_widget
    data = np.random.default_rng().standard_normal(nbytes // 4).astype(np.float32)
    pending = asyncio.ensure_future(al.tensor(data, device="browser:http-test").numpy_async())
    await asyncio.sleep(0)
    batch, token, slot = _batch(sent)
    commands = batch["commands"]
    assert isinstance(commands, list)
    upload = next(c for c in commands if c["op"] == "upload")
    request = next(c for c in commands if c["op"] == "download")["request"]
    assert batch["spooled"] == {str(upload["buffer"]): token}
    assert _get(spool, token) == data.tobytes()  # the comm carried an empty buffer instead
    _put(spool, slot, data.tobytes())
    reply = {"kind": "reply", "seq": batch["seq"], "downloads": [{"request": request, "buffer": 0}]}
    widget._on_msg(widget, {**reply, "error": None, "spooled": {"0": slot}}, [memoryview(b"")])
    np.testing.assert_array_equal(await asyncio.wait_for(pending, 5), data)
    assert not list(spool.iterdir())


async def test_a_put_that_never_arrived_fails_the_download_and_leaves_no_file(
    http_widget: tuple[BrowserDevice, Sent], spool: Path
) -> None:
    widget, sent = http_widget
    pending, batch, slot = await _round_trip_started(spool, sent)
    (spool / f"{slot}.slot").unlink()  # claimed by a PUT that was cut off: the server removed its part
    request = next(iter(widget.device._requests))  # type: ignore[union-attr]
    reply = {"kind": "reply", "seq": batch["seq"], "downloads": [{"request": request, "buffer": 0}]}
    widget._on_msg(widget, {**reply, "error": None, "spooled": {"0": slot}}, [memoryview(b"")])
    with pytest.raises(BrowserTransferError, match=f"PUT of transfer {slot} never arrived"):
        await asyncio.wait_for(pending, 5)
    assert not list(spool.iterdir())


async def test_a_failed_put_in_the_browser_fails_the_download_and_closes_its_slots(
    http_widget: tuple[BrowserDevice, Sent], spool: Path
) -> None:
    widget, sent = http_widget
    pending, batch, slot = await _round_trip_started(spool, sent)
    _put(spool, slot, b"part")  # a PUT that went through before another failed
    message = "Error: PUT of a transfer failed: HTTP 413"
    widget._on_msg(widget, {"kind": "lost", "seq": batch["seq"], "message": message}, [])
    with pytest.raises(BrowserTransferError, match="in the browser: Error: PUT of a transfer failed"):
        await asyncio.wait_for(pending, 5)
    assert not list(spool.iterdir())


def test_a_probe_that_comes_back_different_keeps_the_comm(
    monkeypatch: pytest.MonkeyPatch, spool: Path
) -> None:
    widget, sent = _capturing(monkeypatch)
    try:
        widget.status = "ready"
        widget._on_msg(widget, {"kind": "hello"}, [])
        probe = sent.pop()[0]
        _put(spool, str(probe["put"]), bytes(reversed(_get(spool, str(probe["get"])))))
        widget._on_msg(widget, {"kind": "probe", "ok": True, "message": ""}, [])
        assert widget.transfer == "comm" and "differ" in widget.transfer_message
        assert not list(spool.iterdir())
    finally:
        widget.close()


def _full(*_: object) -> str:
    raise OSError(28, "No space left on device")


async def test_a_full_spool_leaves_no_file_and_the_comm_carries_the_batch(
    monkeypatch: pytest.MonkeyPatch, http_widget: tuple[BrowserDevice, Sent], spool: Path
) -> None:
    widget, sent = http_widget
    monkeypatch.setattr(Spool, "slot", _full)  # the upload was spooled; the download's slot fails
    data = np.random.default_rng().standard_normal(2**18).astype(np.float32)
    pending = asyncio.ensure_future(al.tensor(data, device="browser:http-test").numpy_async())
    await asyncio.sleep(0)
    assert widget.transfer == "comm" and "No space left" in widget.transfer_message
    assert not list(spool.iterdir())
    ((batch, buffers),) = [(c, b) for c, b in sent if c.get("kind") == "batch"]
    assert "spooled" not in batch and "slots" not in batch
    assert data.tobytes() in [bytes(b) for b in buffers]  # the bytes went through the comm
    pending.cancel()


def test_a_spool_file_that_cannot_be_written_is_removed(monkeypatch: pytest.MonkeyPatch, spool: Path) -> None:
    store = Spool()

    class Full(io.BytesIO):
        def write(self, _: object) -> int:
            raise OSError(28, "No space left on device")

    def fdopen(fd: int, _mode: str) -> Full:
        os.close(fd)
        return Full()

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(OSError, match="No space left"):
        store.offer(b"abc")
    assert not list(spool.iterdir())


def test_a_received_file_is_mapped_writable_so_the_reply_decodes_it_in_place(spool: Path) -> None:
    store = Spool()
    data = np.random.default_rng().standard_normal(3000).astype(np.float32)
    token = store.slot(data.nbytes)
    _put(spool, token, data.tobytes())
    view = store.take(token)
    assert not list(spool.iterdir())  # the file is gone; its pages stay with the view
    decoded = decode_array(view, data.shape, data.dtype)
    np.testing.assert_array_equal(decoded, data)
    assert np.shares_memory(decoded, np.frombuffer(view, np.float32))  # not copied
    decoded[0] += 1  # private: writing leaves nothing behind in the spool
    assert not list(spool.iterdir())
