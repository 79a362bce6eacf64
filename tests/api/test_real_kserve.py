"""OVMS backend against a real KServe 0.21 model server (KServe V2 REST + TF-serving predict)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from accelerate_lab.api import NotFound
from accelerate_lab.api.backends.ovms import OvmsBackend, TensorSpec

from .conftest import backend_for
from .servers import KSERVE_PYTHON, ensure_servers_installed, free_port, running

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def kserve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ensure_servers_installed()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("kserve") / "server.log"
    script = Path(__file__).with_name("kserve_model.py")
    with running(
        [str(KSERVE_PYTHON), str(script), str(port)], url + "/v2/health/ready", timeout=120, log=log
    ):
        yield url


@pytest.fixture
def ovms(kserve_url: str) -> OvmsBackend:
    b = backend_for("ovms", kserve_url, timeout=10)
    assert isinstance(b, OvmsBackend)
    return b


def test_ready_and_metadata(ovms: OvmsBackend) -> None:
    assert ovms.ready() and ovms.ready("doubler")
    meta = ovms.metadata("doubler")
    assert meta.name == "doubler"
    assert meta.inputs == (TensorSpec("x", "FP32", (-1, 3)),) and meta.outputs[0].name == "y"
    assert ovms.list_models() == ["doubler"]


def test_infer_takes_and_returns_tensors(ovms: OvmsBackend) -> None:
    from accelerate_lab.tensor import Tensor, tensor

    x = tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    out = ovms.infer("doubler", {"x": x})
    assert isinstance(out["y"], Tensor)
    np.testing.assert_array_equal(np.asarray(out["y"]), 2 * np.asarray(x))
    # plain numpy in, too
    y = ovms.infer("doubler", {"x": np.ones((1, 3), np.float32)})["y"]
    np.testing.assert_array_equal(np.asarray(y), np.full((1, 3), 2, np.float32))


async def test_async_infer_and_tf_predict(ovms: OvmsBackend) -> None:
    out = await ovms.ainfer("doubler", {"x": np.full((4, 3), 1.5, np.float32)})
    np.testing.assert_array_equal(np.asarray(out["y"]), np.full((4, 3), 3.0, np.float32))
    pred = await ovms.apredict("doubler", [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(np.asarray(pred), [[2, 4, 6], [8, 10, 12]])
    assert np.asarray(ovms.predict("doubler", np.eye(2))).tolist() == [[2.0, 0.0], [0.0, 2.0]]


def test_unknown_model_is_not_found(ovms: OvmsBackend) -> None:
    with pytest.raises(NotFound):
        ovms.metadata("no-such-model")


def test_replicas_with_one_dead_are_balanced_and_health_checked(kserve_url: str) -> None:
    b = backend_for("ovms", f"{kserve_url},http://127.0.0.1:{free_port()}", circuit_failure_threshold=1)
    assert isinstance(b, OvmsBackend)
    assert b.check_health() == [True, False]
    for _ in range(4):
        np.testing.assert_array_equal(
            np.asarray(b.infer("doubler", {"x": np.ones((1, 3), np.float32)})["y"]),
            np.full((1, 3), 2, np.float32),
        )
    assert b.pool.endpoints[1].requests == 0  # the dead replica never got a request
