"""Reusable test helpers for anyone writing a cinerec model: the model battery
(`ModelChecks`, run under pytest) and small generated data sets."""

from cinerec.testing.data import COLD_ITEM, COLD_USER, battery_data, make_ratings_dataset

__all__ = ["COLD_ITEM", "COLD_USER", "battery_data", "make_ratings_dataset"]
