"""Start real servers as subprocesses on 127.0.0.1 free ports, bounded in time, always stopped."""

from __future__ import annotations

import os
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_servers_installed() -> None:
    """Runs scripts/setup_servers.sh when its result is missing (idempotent; `make test` runs it too)."""
    if not (KSERVE_PYTHON.parent.parent / ".installed").exists():
        subprocess.run(["bash", str(REPO / "scripts" / "setup_servers.sh")], check=True, timeout=900)


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
