"""Leakage-free splits of a `Dataset` into train / (valid) / test.

Every split shares the parent's id space: a user or item with no rating in `train`
is *cold*, and its test rows are marked (`Split.cold_user_rows`, `cold_item_rows`),
never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from cinerec.data.dataset import Dataset


@dataclass(frozen=True, eq=False)
class Split:
    """train, optional valid, test: subsets of one Dataset in one index space."""

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    spec: str = ""
    seed: int | None = None
    info: dict = field(default_factory=dict)

    @cached_property
    def cold_user_rows(self) -> np.ndarray:
        """Bool mask over test rows whose user has no rating in train."""
        return self.train.user_counts[self.test.users] == 0

    @cached_property
    def cold_item_rows(self) -> np.ndarray:
        """Bool mask over test rows whose item has no rating in train."""
        return self.train.item_counts[self.test.items] == 0

    @property
    def warm_rows(self) -> np.ndarray:
        return ~(self.cold_user_rows | self.cold_item_rows)

    def cold_share(self) -> dict[str, float]:
        n = max(self.test.n_ratings, 1)
        return {
            "cold_user_rows": float(self.cold_user_rows.sum() / n),
            "cold_item_rows": float(self.cold_item_rows.sum() / n),
            "warm_rows": float(self.warm_rows.sum() / n),
        }
