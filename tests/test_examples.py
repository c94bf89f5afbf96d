"""Every example runs with one command."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sdk_tour_prints_what_the_sdk_records() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.sdk_tour"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "predict cancer" in out
    assert "predwatch.inference" in out and "predwatch.actuals" in out
    assert "predwatch.predictions" in out and "process.memory.usage" in out
