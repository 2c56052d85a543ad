"""Shared test fixtures. Real data lives in ../shared/data beside the project (CI has it)."""

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
VHM = SHARED_DATA / "vhm_lumbar"
TOTALSEG = SHARED_DATA / "totalseg_example"


@pytest.fixture(scope="session")
def vhm_dir() -> Path:
    assert VHM.is_dir(), f"real test data missing: {VHM} (the project expects ../shared/data)"
    return VHM


@pytest.fixture(scope="session")
def totalseg_dir() -> Path:
    assert TOTALSEG.is_dir(), f"real test data missing: {TOTALSEG} (the project expects ../shared/data)"
    return TOTALSEG
