"""The release: `python -m build` makes an sdist and a wheel, and the wheel works in a fresh virtual
environment outside the checkout with no Node on its PATH: import, `accelerate-lab doctor`, a kernel
on the `wgpu` device with the installed WGSL, and the installed widget bundle rendered in Chromium.

The build is the real one (sdist from the checkout, whose build hook runs scripts/build_widget.sh,
a no-op when the bundle is current; then the wheel from the unpacked sdist, as pip does).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import require_browser_tools
from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, connect, serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHADERS = sorted(p.name for p in (ROOT / "shaders").glob("*.wgsl"))
# the widget bundle as scripts/build_widget.sh made it (`make setup` runs it before the tests)
STATIC = ROOT / "accelerate_lab" / "static"
BUNDLE = sorted(p.name for p in STATIC.glob("*") if p.suffix in (".js", ".css"))

# Run inside the fresh venv: one JSON line describing what the installed package found.
PROBE = """
import json, pathlib, numpy as np, accelerate_lab as al
from accelerate_lab.hal.wgpu_shaders import shader_dir
from accelerate_lab import widgets
a = np.arange(12, dtype=np.float32).reshape(3, 4)
b = np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(4, 2)
x, y = al.tensor(a).to("wgpu"), al.tensor(b).to("wgpu")
out = al.relu(x @ y + 1.0)
static = pathlib.Path(al.__file__).parent / "static"
print(json.dumps({
    "package": al.__file__,
    "version": al.__version__,
    "device": out.device,
    "adapter": al.get_device("wgpu").info().description,
    "error": float(np.abs(out.numpy() - np.maximum(a @ b + 1.0, 0.0)).max()),
    "shaders": str(shader_dir()),
    "static": str(static),
    # anywidget reads the path it is given: each widget holds an installed bundle file's text
    "from_bundle": {
        name: str(getattr(widgets, name)._esm) in {f.read_text() for f in static.glob("*.js")}
        and str(getattr(widgets, name)._css) in {f.read_text() for f in static.glob("*.css")}
        for name in widgets.__all__
    },
}))
"""


@dataclass(frozen=True)
class Release:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Installed:
    python: Path
    env: dict[str, str]
    site: Path


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (sdist,) = out.glob("accelerate_lab-*.tar.gz")
    (wheel,) = out.glob("accelerate_lab-*-py3-none-any.whl")
    return Release(sdist, wheel)


@pytest.fixture(scope="module")
def installed(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel with its gpu, api and models extras (and anywidget: every widget, the model demos
    included, imports) in a venv whose PATH is its bin alone."""
    home = tmp_path_factory.mktemp("user")
    venv.EnvBuilder(with_pip=False).create(home / "venv")
    bin_dir = home / "venv" / "bin"
    env = {"PATH": str(bin_dir), "HOME": str(home), "XDG_RUNTIME_DIR": "/tmp", "LANG": "C.UTF-8"}
    for name in ("PIP_FIND_LINKS", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONFIG_FILE"):
        if name in os.environ:
            env[name] = os.environ[name]
    assert shutil.which("node", path=env["PATH"]) is None
    # this process's pip installs into the new interpreter (no ensurepip: faster); no .pyc compiling
    pip = [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-compile", f"{release.wheel}[gpu,api,models]", "anywidget"],
        check=True,
        capture_output=True,
        env=env,
        cwd=home,
        timeout=600,
    )
    site = subprocess.run(
        [bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
    ).stdout.strip()
    return Installed(bin_dir / "python", env, Path(site))


def run_installed(installed: Installed, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        env=installed.env,
        cwd=installed.python.parents[2],
        timeout=300,
    )


def test_wheel_carries_the_shaders_and_the_widget_bundle(release: Release) -> None:
    names = set(zipfile.ZipFile(release.wheel).namelist())
    assert {"browser_device.js", "browser_device.css"} <= set(BUNDLE), f"no widget bundle in {STATIC}"
    assert {f"accelerate_lab/shaders/{name}" for name in SHADERS} <= names
    assert {f"accelerate_lab/static/{name}" for name in BUNDLE} <= names
    assert "accelerate_lab/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "widget/", "shaders/"))]


def test_sdist_carries_sources_and_the_built_bundle(release: Release) -> None:
    with tarfile.open(release.sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {f"shaders/{name}" for name in SHADERS} <= names
    assert {f"accelerate_lab/static/{name}" for name in BUNDLE} <= names
    assert {"hatch_build.py", "LICENSE", "widget/package-lock.json", "scripts/build_widget.sh"} <= names
    assert not [n for n in names if n.startswith((".gl/", ".whl/", ".venv/", "widget/node_modules"))]


def test_metadata_names_license_extras_and_the_command(release: Release) -> None:
    with zipfile.ZipFile(release.wheel) as wheel:
        info = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(info).decode()
        entry_points = wheel.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "License-Expression: MIT" in metadata
    for extra in ("models", "servers", "dev", "gpu", "api", "lab", "docs"):
        assert f"Provides-Extra: {extra}\n" in metadata
    assert "accelerate-lab = accelerate_lab.cli:main" in entry_points


def test_installed_package_runs_a_wgpu_kernel_with_its_own_shaders_and_bundle(installed: Installed) -> None:
    result = run_installed(installed, installed.python, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    package = installed.site / "accelerate_lab"
    assert Path(found["package"]).parent == package
    assert found["device"] == "wgpu" and found["error"] < 1e-5, found
    assert Path(found["shaders"]) == package / "shaders"
    assert Path(found["static"]) == package / "static"
    assert found["from_bundle"] and all(found["from_bundle"].values()), found["from_bundle"]


def test_doctor_command_reports_the_installed_version_and_wgpu(installed: Installed) -> None:
    result = run_installed(installed, installed.python.parent / "accelerate-lab", "doctor")
    assert result.returncode == 0, result.stderr
    from accelerate_lab import __version__

    assert f"accelerate_lab {__version__} on Python" in result.stdout
    assert "wgpu" in result.stdout and "cpu" in result.stdout


@pytest.mark.browser
def test_installed_bundle_renders_the_browser_device_in_chromium(
    installed: Installed, tmp_path: Path
) -> None:
    require_browser_tools()
    from playwright.sync_api import sync_playwright

    static = installed.site / "accelerate_lab" / "static"
    for name in BUNDLE:
        shutil.copy(static / name, tmp_path / name)
    shutil.copy(ROOT / "tests" / "browser" / "page.html", tmp_path / "page.html")
    with serve(tmp_path) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/page.html")
            page.wait_for_function("window.pageReady === true", timeout=30_000)
            _, state = connect(page, render=True)
            view = page.locator("#view .al-browser-device")
            view.locator(".al-bd-title").wait_for(timeout=30_000)
            assert state["status"] == "ready", state.get("message")
            assert view.get_attribute("data-status") == "ready"
            assert "BrowserDevice" in view.inner_text() and "adapter" in view.inner_text()
            assert not errors, errors
        finally:
            browser.close()
