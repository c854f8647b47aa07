"""Property-based fuzzing of the data loaders (`fuzz_data.DATA_TARGETS`): whatever the
bytes, only declared errors escape and whatever loads keeps the Dataset invariants."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.reliability.fuzz_data import DATA_DECLARED, DATA_TARGETS


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(DATA_TARGETS))
def test_only_declared_errors_escape(name: str) -> None:
    strategy, fn = DATA_TARGETS[name]

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(example) -> None:
        try:
            fn(example)
        except DATA_DECLARED:
            pass

    run()
