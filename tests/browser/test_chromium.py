"""Without Chromium the browser tests fail and say why; they never skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import chromium


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A PATH holding only a fake apt-get that fails; no Chromium anywhere."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text("#!/bin/sh\necho 'E: Unable to locate package chromium' >&2\nexit 100\n")
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("PREDWATCH_CHROMIUM", raising=False)
    monkeypatch.setattr(chromium, "CANDIDATES", ())
    return bin_dir


def test_a_failed_install_fails_with_apts_words(no_chromium: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install chromium` failed \(100\)(.|\n)*Unable to locate"):
        chromium.chromium_binary()


def test_without_root_it_says_how_to_install(no_chromium: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match="installing it needs root: install it"):
        chromium.chromium_binary()


def test_without_apt_it_says_how_to_install(no_chromium: Path) -> None:
    (no_chromium / "apt-get").unlink()
    with pytest.raises(pytest.fail.Exception, match="apt-get is not available"):
        chromium.chromium_binary()


def test_a_named_binary_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PREDWATCH_CHROMIUM", str(tmp_path / "chrome"))
    with pytest.raises(pytest.fail.Exception, match="is not an executable file"):
        chromium.chromium_binary()
