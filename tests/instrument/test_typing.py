"""mypy sees through @instrument.monitor: the decorated function keeps its parameters and return type."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_decorated_signatures_for_type_checkers() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--hide-error-context",
            "--no-error-summary",
            "tests/typing/check_signatures.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if "check_signatures.py" in line]
    revealed = [line for line in lines if line.startswith("note: Revealed type")]
    assert len(revealed) == 3, result.stdout
    assert "(x: numpy.ndarray[" in revealed[0] and "scale: float =) -> list[float]" in revealed[0]
    assert "(rows: list[dict[str, float]]) -> typing.Coroutine[Any, Any, int]" in revealed[1]
    assert "def (x: list[float]) -> float" in revealed[2]  # self is bound away, as on the plain method
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 3, errors
    assert 'Argument 1 to "predict" has incompatible type "str"' in errors[0]
    assert 'Argument "scale" to "predict" has incompatible type "str"' in errors[1]
    assert 'expression has type "float", variable has type "str"' in errors[2]
