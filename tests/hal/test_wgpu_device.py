"""The wgpu device itself: transfers, pooling, batching, adapter-aware limits, errors, description."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import accelerate_lab as al
from accelerate_lab.hal import wgpu_shaders

pytestmark = pytest.mark.gpu
rng = np.random.default_rng(11)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int32", "int64", "uint8", "bool"])
def test_upload_download_round_trips_every_dtype(gpu: Any, dtype: str) -> None:
    x = (rng.standard_normal((3, 5)) * 50).astype(dtype)
    np.testing.assert_array_equal(gpu.download(gpu.upload(x)), x)
    np.testing.assert_array_equal(al.tensor(x, device=gpu).T[1:, ::2].numpy(), x.T[1:, ::2])


def test_allocate_is_zero_filled_even_when_the_pool_reuses_a_buffer(gpu: Any) -> None:
    for _ in range(3):
        dirty = gpu.upload(np.full(1000, 7.0, np.float32))
        del dirty
        np.testing.assert_array_equal(gpu.download(gpu.allocate((1000,), np.dtype(np.float32))), 0)


def test_freed_buffers_return_to_the_pool(gpu: Any) -> None:
    gpu.upload(np.ones(4096, np.float32))
    held = gpu.memory().allocated_bytes
    for _ in range(5):
        gpu.upload(np.ones(4096, np.float32))
    assert gpu.memory().allocated_bytes == held
    assert gpu.memory().peak_bytes >= held


def test_a_full_pool_gives_back_its_oldest_buffers_first(gpu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate_lab.hal import wgpu_runtime

    gpu.runtime.flush()
    monkeypatch.setattr(wgpu_runtime, "_POOL_BYTES", 4 << 20)
    for _ in range(2):  # fill the pool with 1 MiB buffers, then free a 2 MiB one
        small = [gpu.upload(np.ones(1 << 18, np.float32)) for _ in range(4)]
        del small
        large = gpu.upload(np.ones(1 << 19, np.float32))
        buffer = large.storage.buffer
        del large
    assert gpu.upload(np.ones(1 << 19, np.float32)).storage.buffer is buffer


def test_recorded_work_is_submitted_before_it_holds_half_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate_lab.hal import wgpu_runtime
    from accelerate_lab.hal.wgpu_buffer import WgpuBuffer
    from accelerate_lab.hal.wgpu_device import WgpuDevice

    monkeypatch.setattr(wgpu_runtime, "_POOL_BYTES", 8 << 20)
    dev = WgpuDevice()
    x = al.tensor(np.ones(1 << 18, np.float32), device=dev)  # 1 MiB
    held = dev.memory().allocated_bytes
    for _ in range(20):  # each result is computed, then dropped: its buffer is recycled
        out = x + 1.0
        assert isinstance(out._buf, WgpuBuffer)
        dev.graph.concrete(out._buf)
    assert dev.memory().peak_bytes <= held + (6 << 20)
    np.testing.assert_array_equal(out.numpy(), 2.0)


def test_many_dispatches_share_one_submission_and_readback_is_lazy(gpu: Any) -> None:
    x = al.tensor(rng.standard_normal(64).astype(np.float32), device=gpu)
    submissions = gpu.stats.submissions
    outs = [al.sum(x * float(i)) for i in range(10)]
    assert gpu.stats.submissions == submissions
    values = [o.numpy() for o in outs]
    assert gpu.stats.submissions == submissions + 1
    np.testing.assert_allclose(values, [np.sum(x.numpy() * i) for i in range(10)], rtol=1e-5)


def test_dispatches_split_past_the_workgroup_limit() -> None:
    from accelerate_lab.hal.wgpu_device import WgpuDevice

    small = WgpuDevice(limits_override={"max-compute-workgroups-per-dimension": 5})
    x = rng.standard_normal((20, 29)).astype(np.float32)  # 10 to 20 workgroups: a 5 x 5 grid
    t = al.tensor(x, device=small)
    np.testing.assert_allclose((al.exp(t) + 1).numpy(), np.exp(x) + 1, rtol=1e-6)
    np.testing.assert_allclose(al.softmax(t, -1).numpy(), al.softmax(al.tensor(x), -1).numpy(), rtol=1e-5)
    np.testing.assert_allclose((t @ t.T).numpy(), x @ x.T, rtol=1e-4, atol=1e-4)


def test_tensors_past_the_binding_limit_are_tiled() -> None:
    from accelerate_lab.hal.wgpu_device import WgpuDevice

    small = WgpuDevice(limits_override={"max-storage-buffer-binding-size": 2048})
    x = rng.standard_normal((40, 70)).astype(np.float32)
    t = al.tensor(x, device=small)
    before = small.stats.dispatches
    np.testing.assert_array_equal((t.T * 2).numpy(), x.T * 2)
    assert small.stats.dispatches - before > 1
    np.testing.assert_array_equal(t[::3, 5:].clone().numpy(), x[::3, 5:])


def test_validation_errors_become_device_errors(gpu: Any) -> None:
    with pytest.raises(al.DeviceError, match="wgpu failed while compiling"):
        gpu.runtime.pipeline("fn main( {", ("uniform",))


def test_a_lost_device_raises_a_clear_error() -> None:
    from accelerate_lab.hal.wgpu_device import WgpuDevice

    doomed = WgpuDevice()
    t = al.tensor(np.ones(3, np.float32), device=doomed)
    doomed.runtime.device.destroy()
    with pytest.raises(al.DeviceError, match=r"lost|destroyed|wgpu failed"):
        (t + 1).numpy()
    with pytest.raises(al.DeviceError, match="reset_devices"):
        (t + 2).numpy()


def test_shape_errors_name_the_shapes(gpu: Any) -> None:
    a = al.tensor(np.ones((2, 3), np.float32), device=gpu)
    with pytest.raises(al.ShapeError, match=r"\(2, 3\).*\(4, 3\)"):
        gpu.run("add", [a._buf, al.tensor(np.ones((4, 3), np.float32), device=gpu)._buf], {})
    with pytest.raises(al.ShapeError, match="matmul"):
        gpu.run("matmul", [a._buf, a._buf], {})
    with pytest.raises(IndexError, match="out of bounds"):
        a[5]


def test_info_describes_the_adapter_features_and_limits(gpu: Any) -> None:
    info = gpu.info()
    profile = gpu.runtime.profile
    assert info.kind == "gpu" and info.name == "wgpu"
    assert profile.adapter_type in info.description and profile.backend in info.description
    assert info.limits["max-storage-buffer-binding-size"] > 0
    assert set(info.features) <= set(profile.features) | {"shader-f16", "subgroup"}
    assert info.is_fallback == (profile.adapter_type == "CPU")
    assert gpu.workgroup == (64 if info.is_fallback else 256)


def test_shaders_are_found_and_prepared_without_user_data() -> None:
    assert (wgpu_shaders.shader_dir() / "matmul.wgsl").is_file()
    source = wgpu_shaders.prepare("//#if F16\nenable f16;\n//#else\nalias T = f32;\n//#endif\n", ())
    assert "enable" not in source and "alias T = f32;" in source
    with pytest.raises(ValueError, match="alias types"):
        wgpu_shaders.prepare("alias T = f32;\n", aliases={"T": "f32; evil"})
