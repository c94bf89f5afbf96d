"""Find Debian's Chromium, installing it with apt-get when it is missing (root, as on CI and these machines).

Never skips: when Chromium can be neither found nor installed, `chromium_binary()` fails the test with what
went wrong and how to fix it. `PREDWATCH_CHROMIUM` names another binary (a local Chrome, say).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
INSTALL_TIMEOUT_S = 480


def _found() -> str | None:
    given = os.environ.get("PREDWATCH_CHROMIUM")
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            pytest.fail(f"PREDWATCH_CHROMIUM={given!r} is not an executable file")
        return given
    for candidate in CANDIDATES:  # the real binary first: /usr/bin/chromium is a wrapper script
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _apt(apt: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run([apt, *args], env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)


def chromium_binary() -> str:
    found = _found()
    if found:
        return found
    how = "install it (apt-get install chromium) or set PREDWATCH_CHROMIUM to a Chromium or Chrome binary"
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(f"the browser tests need Chromium, which is not installed, and apt-get is not available: {how}")
    if os.geteuid() != 0:
        pytest.fail(f"the browser tests need Chromium, which is not installed, and installing it needs root: {how}")
    update = _apt(apt, "update", "-q")
    install = _apt(apt, "install", "-y", "-q", "--no-install-recommends", "chromium")
    found = _found()
    if install.returncode != 0 or not found:
        output = (update.stdout + update.stderr + install.stdout + install.stderr).strip()[-2000:]
        pytest.fail(
            f"the browser tests need Chromium and `apt-get install chromium` failed ({install.returncode}):\n{output}"
        )
    return found
