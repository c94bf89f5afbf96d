"""The SDK's public surface is the flat namespace in instrument/__init__.py, and nothing more."""

from __future__ import annotations

import instrument


def test_public_api_is_locked() -> None:
    assert instrument.__all__ == [
        "ASGIMiddleware",
        "ModelMonitor",
        "WSGIMiddleware",
        "__version__",
        "configure",
        "flush",
        "last_prediction_ids",
        "log_actuals",
        "monitor",
        "shutdown",
        "wrap_model",
    ]
    public = {name for name in vars(instrument) if not name.startswith("_")} - {"annotations", "Any", "semconv"}
    assert public == set(instrument.__all__) - {"__version__"}


def test_sdk_never_imports_the_collector() -> None:
    import subprocess
    import sys

    code = "import sys, instrument; print([m for m in sys.modules if m.startswith(('collector', 'pandas', 'torch'))])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
