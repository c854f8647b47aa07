"""Property-based fuzzing of every boundary (`fuzz_targets.TARGETS`): whatever the input,
only declared errors escape. ``CINEREC_FUZZ_EXAMPLES`` sets the examples per target
(default 2,000 as in CI; `benchmarks/fuzz.py` runs the long version)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from tests.reliability.fuzz_targets import TARGETS

EXAMPLES = int(os.environ.get("CINEREC_FUZZ_EXAMPLES", "2000"))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_declared_errors_escape(name: str) -> None:
    target = TARGETS[name]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def run(example) -> None:
        try:
            target.run(example)
        except target.declared:
            pass

    run()
