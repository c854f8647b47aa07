"""Shared fixtures: small generated data sets (no files) and the real-data home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cinerec.data.dataset import Dataset
from cinerec.testing.data import make_ratings_dataset

__all__ = ["make_ratings_dataset"]


@pytest.fixture
def tiny() -> Dataset:
    return make_ratings_dataset()


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The real-data home ($CINEREC_DATA); tests needing it skip when it is unset."""
    home = os.environ.get("CINEREC_DATA")
    if not home:
        pytest.skip("CINEREC_DATA is not set (CI sets it to ../shared/data)")
    return Path(home)
