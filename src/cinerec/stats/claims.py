"""What paper 000 reports about rating variance: claims to test, not measurements."""

from __future__ import annotations

#: What paper 000 reports (claims, not measurements), for side-by-side tables.
PAPER_CLAIMS: dict[str, float] = {
    "tier high: sigma": 0.89,
    "tier medium: sigma": 1.23,
    "tier low: sigma": 1.67,
    "tier high: consistency": 0.794,
    "tier medium: consistency": 0.617,
    "tier low: consistency": 0.432,
    "Action: sigma": 1.42,
    "Drama: sigma": 1.18,
    "Comedy: sigma": 1.38,
    "corr(sigma, mean) pearson": -0.743,
    "Comedy holiday sigma": 1.62,
    "Comedy rest sigma": 1.38,
    "Drama holiday sigma": 1.19,
    "Drama rest sigma": 1.18,
}
