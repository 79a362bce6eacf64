"""Hatch build hook: the widget bundle (``accelerate_lab/static/``) is built from ``widget/`` first.

In a source checkout with Node, ``scripts/build_widget.sh`` bundles the TypeScript (it does nothing
when the bundle is newer than its inputs). Building from an sdist packages the bundle the sdist
carries, so a wheel builds with no Node and no network; so does a checkout without Node whose bundle
was built before. A missing bundle stops the build with the command that makes it. Editable
installs skip the hook: ``make setup`` runs the same script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class WidgetBundleHook(BuildHookInterface[BuilderConfig]):
    """Runs the widget build before the wheel or sdist collects its files."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Build the bundle where possible, then check that every bundle file is there."""
        if self.target_name == "wheel" and version == "editable":
            return
        root = Path(self.root)
        script = root / "scripts" / "build_widget.sh"
        from_sdist = (root / "PKG-INFO").is_file()
        if not from_sdist and script.is_file() and shutil.which("node") and shutil.which("npm"):
            # the script's argument is a venv to give Playwright to; a build has none
            subprocess.run(["bash", str(script), os.devnull], cwd=root, check=True)
        elif not from_sdist:
            self.app.display_warning("accelerate_lab: no Node on PATH: packaging the bundle built before")
        static = root / "accelerate_lab" / "static"
        if not (list(static.glob("*.js")) and list(static.glob("*.css"))):
            raise RuntimeError(
                f"the widget bundle is missing (no .js and .css files in {static}): "
                "install Node 20 and run `bash scripts/build_widget.sh`, then build again"
            )
