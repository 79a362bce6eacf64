"""The kernel side of the browser device without a browser: protocol, awaitable downloads, errors,
freeing, chunked transfers, and the widget's connection states. A small stand-in front end keeps
uploaded bytes and answers downloads of them later, as the real one does between cells or while a cell
awaits."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal import get_device, register_device, unregister_device
from accelerate_lab.hal.browser_chunks import MESSAGE_BYTES, Assembler, split
from accelerate_lab.hal.browser_device import BrowserProxyDevice
from accelerate_lab.hal.browser_errors import (
    BrowserDataPending,
    BrowserDeviceLost,
    BrowserOutOfMemory,
    BrowserTimeout,
    BrowserTransferError,
    NoWebGPUError,
)
from accelerate_lab.widgets import BrowserDevice


class StandIn:
    """Keeps uploaded bytes by id; answers each batch (downloads of whole uploads) when ``deliver`` runs."""

    def __init__(self) -> None:
        self.data: dict[int, bytes] = {}
        self.batches: list[tuple[dict[str, object], list[memoryview]]] = []
        self.outbox: list[tuple[dict[str, object], list[bytes]]] = []
        self.fail_with: dict[str, object] | None = None
        self.device: BrowserProxyDevice | None = None

    def __call__(self, content: dict[str, object], buffers: list[memoryview]) -> None:
        self.batches.append((content, buffers))
        downloads: list[dict[str, object]] = []
        out: list[bytes] = []
        for command in content["commands"]:  # type: ignore[attr-defined]
            if command["op"] == "upload":
                self.data[command["id"]] = bytes(buffers[command["buffer"]])
            elif command["op"] == "download":
                downloads.append({"request": command["request"], "buffer": len(out)})
                out.append(self.data[command["view"]["id"]])
        reply = {
            "kind": "reply",
            "seq": content["seq"],
            "downloads": downloads,
            "error": self.fail_with,
            "memory": {},
        }
        self.outbox.append((reply, out))

    def deliver(self) -> None:
        assert self.device is not None
        while self.outbox:
            self.device.receive(*self.outbox.pop(0))


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    front = StandIn()
    front.device = BrowserProxyDevice(front, name="browser:test", timeout=0.5)
    register_device("browser:test", lambda: front.device, replace=True)  # type: ignore[arg-type, return-value]
    yield front
    unregister_device("browser:test")


def test_numpy_before_the_data_arrived_names_numpy_async(stand_in: StandIn) -> None:
    t = al.tensor([1.0, 2.0], device="browser:test")
    with pytest.raises(BrowserDataPending, match=r"await t\.numpy_async\(\)"):
        t.numpy()
    stand_in.deliver()  # what happens between cells
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


async def test_numpy_async_awaits_the_reply(stand_in: StandIn) -> None:
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    t = al.tensor(data, device="browser:test")
    asyncio.get_running_loop().call_later(0.05, stand_in.deliver)
    np.testing.assert_array_equal(await t.numpy_async(), data)


async def test_numpy_async_times_out_when_no_browser_answers(stand_in: StandIn) -> None:
    t = al.tensor([1.0], device="browser:test")
    with pytest.raises(BrowserTimeout, match=r"did not answer within 0\.5 s"):
        await t.numpy_async()


def test_batches_carry_numbers_as_binary_buffers(stand_in: StandIn) -> None:
    data = np.arange(1000, dtype=np.float32)
    t = al.tensor(data, device="browser:test")
    stand_in.device.flush()  # type: ignore[union-attr]
    content, buffers = stand_in.batches[-1]
    assert len(json.dumps(content)) < 200  # the 1000 numbers are not in the JSON
    assert bytes(buffers[0]) == data.tobytes()
    del t


def test_uint8_and_bool_travel_widened_and_come_back(stand_in: StandIn) -> None:
    values = np.array([0, 7, 255], dtype=np.uint8)
    t = al.tensor(values, dtype="uint8", device="browser:test")
    with pytest.raises(BrowserDataPending):
        t.numpy()
    stand_in.deliver()
    out = t.numpy()
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, values)


def test_freeing_a_tensor_frees_it_in_the_browser(stand_in: StandIn) -> None:
    t = al.tensor([1.0, 2.0, 3.0], device="browser:test")
    buffer_id = stand_in.device._batch.commands[0]["id"]  # type: ignore[union-attr]
    del t
    gc.collect()
    stand_in.device.flush()  # type: ignore[union-attr]
    frees = [c for c, _ in stand_in.batches for c in c["commands"] if c["op"] == "free"]  # type: ignore[attr-defined]
    assert {"op": "free", "id": buffer_id} in frees
    assert stand_in.device.memory().allocated_bytes == 0  # type: ignore[union-attr]


def test_a_browser_error_arrives_as_a_typed_exception(stand_in: StandIn) -> None:
    stand_in.fail_with = {"kind": "out-of-memory", "message": "Not enough memory left.", "command": 0}
    t = al.tensor([1.0], device="browser:test")
    with pytest.raises(BrowserDataPending):
        t.numpy()
    stand_in.deliver()
    with pytest.raises(BrowserOutOfMemory, match="Not enough memory left"):
        al.tensor([2.0], device="browser:test")


def test_an_unsupported_kernel_is_refused_before_sending(stand_in: StandIn) -> None:
    t = al.tensor(np.ones(3, np.float64), dtype="float64", device="browser:test")
    with pytest.raises(al.UnsupportedKernelError, match="float64"):
        stand_in.device.run("exp", [t._buf], {})  # type: ignore[union-attr]


def test_a_disconnected_device_says_so(stand_in: StandIn) -> None:
    stand_in.device.disconnect("the widget was closed")  # type: ignore[union-attr]
    with pytest.raises(BrowserDeviceLost, match=r"show al\.BrowserDevice"):
        al.tensor([1.0], device="browser:test")


def _report(widget: BrowserDevice, state: Mapping[str, object]) -> None:
    """What the front end's state sync does when the browser reports."""
    for key, value in state.items():
        setattr(widget, key, value)


def test_widget_registers_the_device_when_the_browser_is_ready() -> None:
    widget = BrowserDevice(name="browser:widget-test")
    try:
        assert not widget.connected
        _report(
            widget,
            {
                "adapter": {"vendor": "google", "is_fallback": True},
                "features": ["shader-f16"],
                "status": "ready",
            },
        )
        device = get_device("browser:widget-test")
        assert device.info().is_fallback and device.info().kind == "browser"
        _report(widget, {"message": "the GPU device was lost: destroyed", "status": "lost"})
        with pytest.raises(al.DeviceError, match="unknown device"):
            get_device("browser:widget-test")
    finally:
        widget.close()


async def test_ready_says_why_when_the_browser_has_no_webgpu() -> None:
    widget = BrowserDevice(name="browser:widget-test")
    try:
        _report(widget, {"message": "this page is not a secure context", "status": "no-webgpu"})
        with pytest.raises(NoWebGPUError, match="not a secure context"):
            await widget.ready(timeout=1)
    finally:
        widget.close()


async def test_ready_times_out_without_a_browser() -> None:
    widget = BrowserDevice(name="browser:widget-test")
    try:
        with pytest.raises(BrowserTimeout, match="no browser has connected"):
            await widget.ready(timeout=0.1)
    finally:
        widget.close()


def test_replies_reach_the_device_through_the_widget_comm(monkeypatch: pytest.MonkeyPatch) -> None:
    widget = BrowserDevice(name="browser:widget-test")
    sent: list[Sequence[memoryview]] = []
    monkeypatch.setattr(widget, "send", lambda content, buffers: sent.append(buffers))
    try:
        _report(widget, {"status": "ready"})
        t = al.tensor([4.0, 5.0], device="browser:widget-test")
        with pytest.raises(BrowserDataPending):
            t.numpy()
        request = next(c for c in widget.device._requests)  # type: ignore[union-attr]
        reply = {
            "kind": "reply",
            "seq": 1,
            "downloads": [{"request": request, "buffer": 0}],
            "error": None,
            "memory": {},
        }
        widget._on_msg(widget, reply, [np.array([4.0, 5.0], np.float32).tobytes()])
        np.testing.assert_array_equal(t.numpy(), [4.0, 5.0])
    finally:
        widget.close()


@pytest.mark.parametrize("sizes", [[10], [9, 0, 3], [4, 4, 4, 1]])
def test_chunked_messages_stay_within_the_limit_and_reassemble_by_offset(sizes: list[int]) -> None:
    rng = np.random.default_rng(2)
    buffers = [memoryview(rng.integers(0, 256, n, dtype=np.uint8).tobytes()) for n in sizes]
    messages = split({"kind": "batch", "seq": 3}, buffers, transfer=7, chunk_bytes=2, message_bytes=5)
    assert len(messages) > 2 and all(sum(b.nbytes for b in m[1]) <= 5 for m in messages)
    assembler = Assembler()
    delivered = [assembler.feed(*m) for m in messages]
    assert all(d == (None, None) for d in delivered[:-1])
    (content, data), lost = delivered[-1]  # type: ignore[misc]
    assert lost is None and content == {"kind": "batch", "seq": 3}
    assert [bytes(d) for d in data] == [bytes(b) for b in buffers]
    assert assembler.pending_bytes == 0


def test_a_message_within_the_limit_travels_as_it_is() -> None:
    buffer = memoryview(bytes(5))
    assert split({"kind": "batch"}, [buffer], transfer=1, message_bytes=5) == [({"kind": "batch"}, [buffer])]


def test_a_missing_chunk_is_reported_at_the_end_marker_or_the_next_transfer() -> None:
    first = split({"kind": "reply"}, [memoryview(bytes(12))], transfer=1, chunk_bytes=4, message_bytes=4)
    second = split({"kind": "reply"}, [memoryview(bytes(12))], transfer=2, chunk_bytes=4, message_bytes=4)
    assembler = Assembler()
    for message in (first[0], first[2], first[3]):  # first[1] went missing
        message_out, lost = assembler.feed(*message)
    assert message_out is None and lost is not None and "8 of 12 bytes" in str(lost)
    assembler.feed(*second[0])
    _, lost = assembler.feed(*first[3][:1], [])  # an end marker of another transfer
    assert lost is not None and "4 of 12 bytes" in str(lost)


def test_a_stalled_transfer_times_out_with_a_clear_error() -> None:
    now = [0.0]
    assembler = Assembler(timeout=5, clock=lambda: now[0])
    messages = split({"kind": "reply"}, [memoryview(bytes(12))], transfer=1, chunk_bytes=4, message_bytes=4)
    assembler.feed(*messages[0])
    now[0] = 10.0
    _, lost = assembler.feed(*messages[1])
    assert isinstance(lost, BrowserTransferError) and "nothing came for 10 s" in str(lost)


def _ready_widget(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[BrowserDevice, list[tuple[dict[str, object], list[memoryview]]]]:
    widget = BrowserDevice(name="browser:widget-test")
    sent: list[tuple[dict[str, object], list[memoryview]]] = []
    monkeypatch.setattr(widget, "send", lambda content, buffers: sent.append((content, buffers)))
    _report(widget, {"status": "ready"})
    return widget, sent


async def test_a_large_tensor_crosses_the_widget_comm_in_chunks_both_ways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    widget, sent = _ready_widget(monkeypatch)
    try:
        data = np.random.default_rng(3).standard_normal(5 * 2**20).astype(np.float32)  # 20 MiB
        t = al.tensor(data, device="browser:widget-test")
        pending = asyncio.ensure_future(t.numpy_async())
        await asyncio.sleep(0)
        assert all(sum(b.nbytes for b in buffers) <= MESSAGE_BYTES for _, buffers in sent)
        front = Assembler()
        batches = [m for m in (front.feed(*message)[0] for message in sent) if m is not None]
        commands = [c for content, _ in batches for c in content["commands"]]  # type: ignore[attr-defined]
        upload = next(c for c in commands if c["op"] == "upload")
        request = next(c for c in commands if c["op"] == "download")["request"]
        uploaded = next(buffers for content, buffers in batches if upload in content["commands"])  # type: ignore[operator]
        assert bytes(uploaded[upload["buffer"]]) == data.tobytes()
        reply = {"kind": "reply", "seq": 1, "downloads": [{"request": request, "buffer": 0}], "error": None}
        for message in split(reply, [data.data.cast("B")], transfer=1):
            widget._on_msg(widget, *message)
        np.testing.assert_array_equal(await asyncio.wait_for(pending, 5), data)
    finally:
        widget.close()


async def test_a_reply_that_lost_a_chunk_fails_the_download(monkeypatch: pytest.MonkeyPatch) -> None:
    widget, _ = _ready_widget(monkeypatch)
    try:
        t = al.tensor(np.ones(2**22, np.float32), device="browser:widget-test")
        pending = asyncio.ensure_future(t.numpy_async())
        await asyncio.sleep(0)
        request = next(iter(widget.device._requests))  # type: ignore[union-attr]
        reply = {"kind": "reply", "seq": 1, "downloads": [{"request": request, "buffer": 0}], "error": None}
        messages = split(reply, [memoryview(bytes(2**24))], transfer=1)
        for message in messages[1:]:  # the first chunk went missing
            widget._on_msg(widget, *message)
        with pytest.raises(BrowserTransferError, match=r"of 16777216 bytes had arrived"):
            await asyncio.wait_for(pending, 5)
    finally:
        widget.close()


async def test_a_batch_the_browser_got_incomplete_fails_the_download(monkeypatch: pytest.MonkeyPatch) -> None:
    widget, _ = _ready_widget(monkeypatch)
    try:
        pending = asyncio.ensure_future(al.tensor([1.0], device="browser:widget-test").numpy_async())
        await asyncio.sleep(0)
        widget._on_msg(widget, {"kind": "lost", "message": "transfer 1: the end marker came ..."}, [])
        with pytest.raises(BrowserTransferError, match="in the browser: transfer 1"):
            await asyncio.wait_for(pending, 5)
    finally:
        widget.close()
