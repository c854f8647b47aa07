"""Train-only per-item variance signals used by every recommendation.

Every model's ``recommend`` attaches these to its items (confidence) and can re-rank
risk-averse (paper 000, 5.3: high-sigma movies are risky despite their mean). They are
computed from ``train`` only, with the formulas of `cinerec.features.moments`:

* ``sigma``: population sd of the item's train ratings (0 for an item without any);
* ``consistency`` = clip(1 - sigma / sigma_max, 0, 1), sigma_max = (hi - lo) / 2;
* ``polarization`` = 2 * min(share <= lo + 1, share >= hi - 1), 0 without ratings;
* ``confidence`` = consistency * n / (n + SUPPORT_PRIOR): how much the rating
  distribution alone lets us trust a recommendation of this item. It is high when the
  ratings agree AND there are enough of them; the shrinkage factor n / (n + 5) stops
  an item with one or two identical ratings (sigma 0) from looking certain. An item
  with no train rating has confidence 0. Always in [0, 1].
"""

from __future__ import annotations

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.features.moments import item_group_stats

#: Pseudo-count: an item with n ratings gets n / (n + SUPPORT_PRIOR) of its consistency.
SUPPORT_PRIOR = 5.0


def item_risk(train: Dataset) -> dict[str, np.ndarray]:
    """Per item (over the whole catalogue): sigma, consistency, polarization, confidence, count.

    All arrays are float64 of length ``train.n_items``; items without ratings get
    sigma 0, consistency 1 (nothing disagrees), polarization 0, confidence 0, count 0.
    """
    gs = item_group_stats(train, ddof=0)
    n = gs.count.astype(np.float64)
    sigma = np.nan_to_num(gs.sigma, nan=0.0)
    consistency = np.nan_to_num(gs.consistency, nan=1.0)
    polarization = np.nan_to_num(gs.polarization, nan=0.0)
    confidence = consistency * n / (n + SUPPORT_PRIOR)
    return {
        "sigma": sigma,
        "consistency": consistency,
        "polarization": polarization,
        "confidence": confidence,
        "count": n,
    }
