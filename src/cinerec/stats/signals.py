"""Train-only per-item variance signals used by every recommendation.

``confidence`` is how much a recommendation of this item can be trusted from the
rating distribution alone (paper 000, 5.3): high when the item's ratings agree (low
population sigma) and there are enough of them. Definitions are in
`cinerec.stats` and the README.
"""

from __future__ import annotations

import numpy as np

from cinerec.data.dataset import Dataset

#: Pseudo-count: an item with n ratings gets n / (n + SUPPORT_PRIOR) of its consistency.
SUPPORT_PRIOR = 5.0


def item_risk(train: Dataset) -> dict[str, np.ndarray]:
    """Per item (over the whole catalogue): population sigma, consistency, confidence.

    sigma is 0 for items without ratings; consistency = 1 - sigma / sigma_max with
    sigma_max = (max - min) / 2 (the largest population sigma on the scale);
    confidence = consistency * n / (n + SUPPORT_PRIOR), in [0, 1].
    """
    n = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
    r = train.ratings.astype(np.float64)
    s1 = np.bincount(train.items, weights=r, minlength=train.n_items)
    s2 = np.bincount(train.items, weights=r * r, minlength=train.n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / n, 0.0)
        var = np.where(n > 0, s2 / n - mean**2, 0.0)
    sigma = np.sqrt(np.clip(var, 0.0, None))
    lo, hi = train.rating_scale
    sigma_max = (hi - lo) / 2.0
    consistency = np.clip(1.0 - sigma / sigma_max, 0.0, 1.0)
    confidence = consistency * n / (n + SUPPORT_PRIOR)
    return {"sigma": sigma, "consistency": consistency, "confidence": confidence, "count": n}
