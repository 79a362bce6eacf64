"""The accelerate-lab command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from accelerate_lab.cli import main


def test_doctor_prints_versions_and_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "devices:" in out and "cpu" in out and "compiled cpu kernels:" in out


def test_doctor_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "accelerate_lab.cli", "doctor"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "accelerate_lab" in result.stdout
