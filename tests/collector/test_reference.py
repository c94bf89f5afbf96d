"""ReferenceProfile: serialisation (bytes and JSON, versioned) and lookups."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from collector.reference import FORMAT_VERSION, ColumnReference, ReferenceProfile
from collector.reference_build import reference_from_columns


@pytest.fixture
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    return reference_from_columns(
        "churn",
        "3",
        inputs={
            "income": rng.lognormal(10, 1, 5000),
            "plan": rng.choice(["basic", "pro", "team"], 5000).tolist(),
            "empty": [None] * 5000,
        },
        outputs={"score": rng.uniform(size=5000)},
        created_at=1_700_000_000.5,
    )


def test_bytes_round_trip(profile: ReferenceProfile) -> None:
    blob = profile.to_bytes()
    assert ReferenceProfile.from_bytes(blob) == profile
    # Memory does not grow with rows: 1,000 atoms per numeric column, whatever the upload size.
    assert len(blob) < 3 * 12_000


def test_json_round_trip_is_strict_json(profile: ReferenceProfile) -> None:
    text = profile.to_json()
    data = json.loads(text)
    assert data["format"] == FORMAT_VERSION
    assert [c["name"] for c in data["columns"]] == ["income", "plan", "empty", "score"]
    assert ReferenceProfile.from_json(text) == profile
    assert ReferenceProfile.from_dict(data) == profile


def test_production_range_round_trip() -> None:
    profile = ReferenceProfile(
        "m", "1", (), rows=0, created_at=5.0, source="production range", range_s=(1.0, 2.0), actuals={"n": 3}
    )
    assert ReferenceProfile.from_bytes(profile.to_bytes()) == profile


def test_lookup(profile: ReferenceProfile) -> None:
    assert profile.column("output", "score") is profile.columns[3]
    assert profile.column("input", "score") is None


def test_unknown_format_and_bad_bytes_raise(profile: ReferenceProfile) -> None:
    data = profile.to_dict()
    data["format"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="unsupported reference format"):
        ReferenceProfile.from_dict(data)
    with pytest.raises(ValueError, match="bad magic"):
        ReferenceProfile.from_bytes(b"nonsense")
    with pytest.raises(ValueError, match="corrupt"):
        ReferenceProfile.from_bytes(b"PWREF" + b"garbage")
    bad = profile.to_dict()
    bad["source"] = "elsewhere"
    with pytest.raises(ValueError, match="source"):
        ReferenceProfile.from_dict(bad)


def test_invalid_column_summaries_raise(profile: ReferenceProfile) -> None:
    numeric = profile.columns[0].to_dict()
    numeric["numeric"]["proportions"] = numeric["numeric"]["proportions"][:-1]
    with pytest.raises(ValueError, match="one longer"):
        ColumnReference.from_dict(numeric)
    numeric = profile.columns[0].to_dict()
    numeric["numeric"]["quantiles"][0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        ColumnReference.from_dict(numeric)
    categorical = profile.columns[1].to_dict()
    categorical["categorical"]["counts"].append(1)
    with pytest.raises(ValueError, match="one count per category"):
        ColumnReference.from_dict(categorical)
    role = profile.columns[1].to_dict() | {"role": "feature"}
    with pytest.raises(ValueError, match="unknown role"):
        ColumnReference.from_dict(role)


def test_blob_is_zlib_json_behind_a_magic(profile: ReferenceProfile) -> None:
    blob = profile.to_bytes()
    assert json.loads(zlib.decompress(blob[5:]))["model"] == "churn"
