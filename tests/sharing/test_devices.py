"""The sharing layer on the native WebGPU device, through the same device protocol as the cpu."""

from __future__ import annotations

import numpy as np
import pytest

import accelerate_lab as al


@pytest.fixture
def wgpu_device() -> str:
    try:
        al.get_device("wgpu")
    except al.DeviceError as error:
        pytest.skip(f"no native WebGPU device here: {error}")
    return "wgpu"


@pytest.mark.gpu
def test_tensors_copies_and_views_on_wgpu_hold_the_real_data(wgpu_device: str) -> None:
    mgr = al.TensorSharingManager(max_memory_mb={"wgpu": 1})
    source = np.arange(64, dtype=np.float32).reshape(8, 8)
    host = mgr.register_shared_tensor("w", data=source, producer_model="bert")
    gpu = host.copy_to(wgpu_device)
    assert gpu.data.device == "wgpu"
    np.testing.assert_array_equal(gpu.data.numpy(), source)
    with gpu.create_view("rows", 16, (2, 8)) as flat, gpu.create_view("box", (1, 2), (3, 4)) as box:
        np.testing.assert_array_equal(flat.get_data().numpy(), source[2:4])
        np.testing.assert_array_equal(box.get_data().numpy(), source[1:4, 2:6])
    assert mgr.memory_stats("wgpu")["allocated_bytes.all.current"] == source.nbytes
    mgr.release_model_tensors("bert")
    assert mgr.free_shared_tensor("w_wgpu") == source.nbytes
    assert mgr.memory_stats("wgpu")["allocated_bytes.all.current"] == 0
