"""Start real servers as subprocesses on 127.0.0.1 free ports, bounded in time, always stopped."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ACCELERATE_LAB_CACHE", Path.home() / ".cache" / "accelerate_lab"))
KSERVE_PYTHON = CACHE / "kserve-0.21.0" / "bin" / "python"
LLAMA_SERVER_SETUP = REPO / "scripts" / "setup_llama_server.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_servers_installed() -> None:
    """Runs scripts/setup_servers.sh when its result is missing (idempotent; `make test` runs it too)."""
    if not (KSERVE_PYTHON.parent.parent / ".installed").exists():
        subprocess.run(["bash", str(REPO / "scripts" / "setup_servers.sh")], check=True, timeout=900)


def llama_server_binary() -> Path:
    """The `llama-server` that scripts/setup_llama_server.sh builds, at the cache path keyed by the version
    that script pins (read from it, so the two never disagree); FileNotFoundError names the script."""
    version = re.search(r'^VERSION="([^"]+)"', LLAMA_SERVER_SETUP.read_text(), re.MULTILINE)
    assert version is not None, f"no VERSION=... line in {LLAMA_SERVER_SETUP}"
    binary = CACHE / f"llama-server-{version.group(1)}" / "bin" / "llama-server"
    if not binary.is_file():
        raise FileNotFoundError(
            f"no llama-server at {binary}: run scripts/setup_llama_server.sh first "
            "(it builds upstream llama.cpp's server once, about 30 min on 2 cores; CI runs it)"
        )
    return binary


@contextmanager
def llama_server(model: Path, alias: str, log: Path, *options: str) -> Iterator[str]:
    """Upstream `llama-server` serving the GGUF `model` as `alias` on a free port; yields its root URL and
    stops it afterwards. One thread (two spin-wait against each other on a loaded 2-core machine: 1.6 s
    per token instead of 0.08 s), one slot and no prompt cache, so that an answer at temperature 0 is
    computed the same way every time; no weight repacking: its AMX kernels crash on this machine's CPU
    (SIGSEGV in ggml_backend_amx_mul_mat while loading)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(llama_server_binary()),
        *("--model", str(model), "--alias", alias, "--host", "127.0.0.1", "--port", str(port)),
        *("--threads", "1", "--parallel", "1", "--ctx-size", "2048", "--no-cache-prompt", "--no-repack"),
        *options,
    ]
    with running(cmd, url + "/health", timeout=120, log=log):
        yield url


@contextmanager
def running(
    cmd: Sequence[str],
    ready_url: str,
    timeout: float = 90.0,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    any_status: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """Starts `cmd`, waits until `ready_url` answers 2xx (any status with `any_status`), or fails after
    `timeout`; stops it afterwards."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        list(cmd), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                detail = log.read_text()[-2000:] if log else ""
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode} before it was ready\n{detail}")
            try:
                response = httpx.get(ready_url, timeout=1.0)
                if response.is_success or any_status:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{cmd[0]} not ready at {ready_url} within {timeout} s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if log:
            out.close()  # type: ignore[union-attr]
