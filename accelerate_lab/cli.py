"""The ``accelerate-lab`` command: ``doctor`` (versions, devices), ``lab`` (JupyterLab on the tutorials)."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from accelerate_lab.hal import DeviceInfo, cpu_nn, probe_devices
from accelerate_lab.hal.cpu_native import native_status

__all__ = ["main"]

_PACKAGES = (
    "accelerate_lab",
    "numpy",
    "wgpu",
    "httpx",
    "anywidget",
    "jupyterlab",
    "safetensors",
    "tokenizers",
)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _describe(name: str, info: DeviceInfo | str) -> list[str]:
    if isinstance(info, str):
        return [f"  {name:<16} unavailable: {info}"]
    fallback = " (fallback adapter)" if info.is_fallback else ""
    lines = [f"  {name:<16} {info.kind}: {info.description}{fallback}"]
    if info.features:
        lines.append(f"  {'':<16} features: {', '.join(info.features)}")
    if info.limits:
        limits = ", ".join(f"{key}={value}" for key, value in sorted(info.limits.items()))
        lines.append(f"  {'':<16} limits: {limits}")
    return lines


def doctor() -> str:
    """A report of versions and devices, as ``accelerate-lab doctor`` prints it."""
    lines = [
        f"accelerate_lab {_version('accelerate_lab')} on Python {platform.python_version()} ({sys.platform})"
    ]
    lines.append("packages:")
    lines += [f"  {name:<16} {_version(name)}" for name in _PACKAGES[1:]]
    lines.append("devices:")
    for name, info in probe_devices().items():
        lines += _describe(name, info)
    lines.append("compiled cpu kernels:")
    lines += [f"  {name:<16} {status}" for name, status in native_status().items()]
    lines.append(f"  {'amx':<16} {'float32 products on AMX tiles' if cpu_nn.amx() else 'not used'}")
    return "\n".join(lines)


def _lab(notebook: str) -> int:
    root = Path.cwd() / "notebooks"
    target = root / notebook if (root / notebook).exists() else root
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", str(target)])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``accelerate-lab`` command."""
    parser = argparse.ArgumentParser(prog="accelerate-lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="print versions and the devices found")
    lab = commands.add_parser("lab", help="start JupyterLab on the tutorials in ./notebooks")
    lab.add_argument("notebook", nargs="?", default="00_tour.ipynb")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        print(doctor())
        return 0
    return _lab(args.notebook)


if __name__ == "__main__":
    raise SystemExit(main())
